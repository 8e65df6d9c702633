"""The service's own browsable API page: Swagger UI from the service's own files, nothing else.

BentoML's page at ``/`` is titled "BentoML Prediction Service" and loads Google Tag Manager,
a third-party script on a page of a service that answers with customer data. This page
uses the Swagger UI files BentoML ships (``/static_content/``), is titled after the
project, turns off Swagger's online validator badge, and is sent with a
Content-Security-Policy that lets the browser load nothing from anywhere but the service
itself.

In a browser: start the service with ``--public-docs`` (the page and the OpenAPI document
hold no customer data), open ``/``, press *Authorize* and paste the API key; *Try it out*
then sends it as ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

TITLE = "cdp-ml scoring API"
INIT_PATH = "/docs-init.js"

# Scripts from the service only; inline styles are Swagger UI's own.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'; form-action 'none'")

PAGE = f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{TITLE}</title>
    <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css" />
    <link rel="icon" type="image/png" href="./static_content/favicon-light-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./static_content/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src=".{INIT_PATH}" charset="UTF-8"></script>
  </body>
</html>
""".encode()

INIT = b"""window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "./docs.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
};
"""
