"""The Open Inference Protocol v2: routes, tensor codec, request and response bodies."""
