"""The HTTP API: a router (common.api.router) over one module per resource
(common.api.resources), sharing one request context, one parameter reader, one
pagination helper and one error shape. Each route is declared once, next to its
handler; the router and the OpenAPI document are both built from those
declarations."""
