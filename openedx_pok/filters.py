"""
The earlier openedx-pok's pipeline step paths, kept so that an operator's configuration keeps working on upgrade.

openedx-pok 21.x/22.x registered ``openedx_pok.filters.CertificateCreatedFilter`` and
``openedx_pok.filters.CertificateRenderFilter`` in ``OPEN_EDX_FILTERS_CONFIG``, and operators copied those paths into
their YAML with ``fail_silently: False``. Without this module every certificate generation would fail with
``ModuleNotFoundError``. The two classes here are the new steps under their old names: they never call POK and never
prevent a certificate (the old steps did both). Each logs one deprecation warning per process naming its new path.

The plugin settings add the new paths as well, so after an upgrade a pipeline usually lists both the old and the new
path for one filter. The old step then does nothing, so the plugin's step runs once per filter call.
"""
import logging
import threading

from django.conf import settings
from openedx_filters.exceptions import OpenEdxFilterException
from openedx_filters.learning.filters import CertificateCreationRequested, CertificateRenderStarted

from openedx_pok.pipeline import RenderPokCredential, RequestPokCredential

log = logging.getLogger(__name__)

CREATION_FILTER = CertificateCreationRequested.filter_type
RENDER_FILTER = CertificateRenderStarted.filter_type

# Legacy class names already warned about in this process (one warning per class and process, also with threads).
_warned = set()
_warned_lock = threading.Lock()


def _as_list(pipeline):
    """openedx-filters accepts a single dotted path as well as a list of them."""
    if isinstance(pipeline, str):
        return [pipeline]
    return list(pipeline or [])


class _LegacyStep:
    """
    Mixin for the old step names: warn once, stand aside when the new step is configured too, else be the new step.

    Placed before the new step class in the bases, so ``super().run_filter`` is the new step's ``run_filter``.
    """

    legacy_path = ""
    new_path = ""
    filter_type_name = ""

    def _configured_pipeline(self):
        """The paths of the pipeline being run: what openedx-filters passed in, else the current settings."""
        running = getattr(self, "running_pipeline", None)
        if running is not None:
            return _as_list(running)
        filter_config = (getattr(settings, "OPEN_EDX_FILTERS_CONFIG", None) or {}).get(self.filter_type_name)
        if isinstance(filter_config, dict):
            return _as_list(filter_config.get("pipeline"))
        return _as_list(filter_config)

    def _warn_once(self, also_configured):
        with _warned_lock:
            if self.legacy_path in _warned:
                return
            _warned.add(self.legacy_path)
        if also_configured:
            log.warning(
                "POK: the pipeline step %s is deprecated and does nothing here because %s is configured for %s too; "
                "remove %s from OPEN_EDX_FILTERS_CONFIG.",
                self.legacy_path, self.new_path, self.filter_type_name, self.legacy_path,
            )
        else:
            log.warning(
                "POK: the pipeline step %s is deprecated; it now runs %s. Replace it by %s in "
                "OPEN_EDX_FILTERS_CONFIG[%r].",
                self.legacy_path, self.new_path, self.new_path, self.filter_type_name,
            )

    def run_filter(self, **kwargs):
        also_configured = self.new_path in self._configured_pipeline()
        self._warn_once(also_configured)
        if also_configured:
            # The new step runs in this same pipeline: return the arguments as they came, adding no key.
            return dict(kwargs)
        try:
            return super().run_filter(**kwargs)
        except OpenEdxFilterException:
            # The render step's deliberate exceptions (redirect, custom page, invalid certificate) are its answer.
            raise
        except Exception:
            # The new steps catch their own errors; this only guards the call itself (e.g. a platform that passes
            # other arguments), which must not fail the operator's fail_silently: False pipeline.
            log.exception("POK: the legacy pipeline step %s could not run %s", self.legacy_path, self.new_path)
            return dict(kwargs)


class CertificateCreatedFilter(_LegacyStep, RequestPokCredential):
    """Old name of :class:`openedx_pok.pipeline.RequestPokCredential` (``CertificateCreationRequested``)."""

    legacy_path = "openedx_pok.filters.CertificateCreatedFilter"
    new_path = "openedx_pok.pipeline.RequestPokCredential"
    filter_type_name = CREATION_FILTER


class CertificateRenderFilter(_LegacyStep, RenderPokCredential):
    """Old name of :class:`openedx_pok.pipeline.RenderPokCredential` (``CertificateRenderStarted``)."""

    legacy_path = "openedx_pok.filters.CertificateRenderFilter"
    new_path = "openedx_pok.pipeline.RenderPokCredential"
    filter_type_name = RENDER_FILTER
