"""HTTP plumbing around the routes: middleware, request ids, error bodies, the OpenAPI document."""
