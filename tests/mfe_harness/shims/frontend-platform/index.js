// '@edx/frontend-platform' of the harness: the MFE configuration. LMS_BASE_URL is the live server (the page's own
// origin); POK_WIDGETS_POLL_MS comes from the page (?poll_ms=), so a test can watch a credential change.
const poll = new URLSearchParams(window.location.search).get('poll_ms');

export function getConfig() {
  return { LMS_BASE_URL: window.location.origin, POK_WIDGETS_POLL_MS: poll ? Number(poll) : undefined };
}
