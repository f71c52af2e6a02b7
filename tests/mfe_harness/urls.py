"""
The sandbox LMS's URLs plus the stand-in MFE pages (``/pok-test/mfe/<app>/``) and their bundles, for the browser tests
only (``@pytest.mark.urls``): the pages come from the LMS's origin so that the learner's session cookie applies to the
widgets' requests, as the LMS's JWT cookie applies to the MFEs' on their shared domain.
"""
from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse
from django.urls import path
from django.utils.html import escape
from django.utils.translation import get_language

from lms_sandbox.urls import urlpatterns as lms_urlpatterns

#: Where tests/test_browser_mfe_widgets.py put the bundles (``<app>.js``), set before the first page is asked for.
BUNDLES = {"dir": None}
APPS = {"learning": "Progress", "learner-dashboard": "My courses"}

PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ margin: 0; font-family: sans-serif; color: #2b2b2b; background: #f2f0ef; line-height: 1.5; }}
  main {{ display: flex; flex-wrap: wrap; gap: 1rem; padding: 1rem; }}
  .page {{ flex: 1 1 20rem; min-width: 0; }}
  #slot {{ flex: 0 1 24rem; min-width: 0; }}
  .default-card {{ background: #fff; padding: 1rem; margin: 0 0 1rem; border: 1px solid #d7d3d1; }}
  .default-card h2 {{ font-size: 1.125rem; margin: 0; }}
  a {{ color: #00688d; }}
  .btn {{ display: inline-block; padding: 0.25rem 0.75rem; border: 1px solid #00688d; border-radius: 0.375rem;
          text-decoration: none; }}
  .btn-primary {{ background: #00688d; color: #fff; }}
  .btn-outline-primary {{ background: #fff; color: #00688d; }}
</style>
</head>
<body>
<main>
  <div class="page"><h1>{title}</h1><p>The stand-in {app} MFE of the openedx-pok browser tests.</p></div>
  <div id="slot"></div>
</main>
<script src="/pok-test/mfe/{app}.js"></script>
</body>
</html>
"""


def page(request, app):
    if app not in APPS:
        raise Http404(app)
    return HttpResponse(PAGE.format(lang=escape(get_language()), title=APPS[app], app=app))


def bundle(request, app):
    if app not in APPS or BUNDLES["dir"] is None:
        raise Http404(app)
    return FileResponse((Path(BUNDLES["dir"]) / f"{app}.js").open("rb"), content_type="text/javascript")


urlpatterns = [
    path("pok-test/mfe/<str:app>/", page),
    path("pok-test/mfe/<str:app>.js", bundle),
    *lms_urlpatterns,
]
