"""The public lookup pages' presentation: Jinja2 templates, their view of a certificate, headers."""
