// openedx-pok: the learner's POK credentials in the MFEs (frontend-plugin-framework DIRECT_PLUGIN widgets).
//
// PokWidgets.CredentialStatus: the progress page's certificate card (slot
//   org.openedx.frontend.learning.progress_certificate_status.v1, props {courseId}): the course's credential.
// PokWidgets.MyCredentials: the learner dashboard's side panel (slot
//   org.openedx.frontend.learner_dashboard.widget_sidebar.v1, no props): one line per credential.
//
// Both read GET ${LMS_BASE_URL}/pok/api/v1/learner/credentials[?course_id=...] (openedx_pok/learner_api.py), which
// answers in the LMS's language, with every word the widgets show (the credentials' words and `labels`). They render
// nothing while the first answer is on its way, when there is no credential (a course that is not mapped, a learner
// without any) and when the first request fails: the MFE page stays as it is without POK.
//
// This file is the whole of them. Tutor (tutor-contrib-pok with tutor-mfe) puts its imports into the MFEs'
// env.config.jsx through the patch mfe-env-config-buildtime-imports and the rest through
// mfe-env-config-buildtime-definitions; without Tutor, paste it at the top of your env.config.jsx (README). Plain
// JavaScript without JSX, and every top-level name prefixed, so that it fits in a file other plugins also write to.
import PokReact from 'react';
import { getConfig as pokGetConfig } from '@edx/frontend-platform';
import { getAuthenticatedHttpClient as pokGetAuthenticatedHttpClient } from '@edx/frontend-platform/auth';

const PokWidgets = (() => {
  const h = PokReact.createElement;
  const API_PATH = '/pok/api/v1/learner/credentials';
  // A credential on its way is read again every POK_WIDGETS_POLL_MS (the MFE's config; default 15 s), at most
  // MAX_POLLS times: the learner who just passed sees it become ready without reloading the page.
  const DEFAULT_POLL_MS = 15000;
  const MAX_POLLS = 20;
  const ON_ITS_WAY = ['in_progress'];

  const styles = {
    card: { margin: '0 0 1rem', padding: '1rem', border: '1px solid #d7d3d1', borderRadius: '0.375rem',
      background: '#fff', color: '#2b2b2b', overflowWrap: 'anywhere' },
    heading: { fontSize: '1.125rem', margin: '0 0 0.5rem' },
    text: { margin: '0 0 0.5rem' },
    links: { display: 'flex', flexWrap: 'wrap', gap: '0.5rem', margin: '0.5rem 0 0' },
    list: { listStyle: 'none', margin: 0, padding: 0 },
    item: { padding: '0.5rem 0', borderTop: '1px solid #d7d3d1' },
    note: { margin: '0.5rem 0 0', fontSize: '0.875rem' },
  };

  function credentialsUrl(courseId) {
    const url = `${pokGetConfig().LMS_BASE_URL}${API_PATH}`;
    return courseId ? `${url}?course_id=${encodeURIComponent(courseId)}` : url;
  }

  // {answer, refreshing, failed}: the API's latest answer (null until the first one), whether a new one is on its
  // way after it, and whether the last request failed.
  function useCredentials(courseId) {
    const [state, setState] = PokReact.useState({ answer: null, refreshing: false, failed: false });
    PokReact.useEffect(() => {
      let stopped = false;
      let timer = null;
      let polls = 0;
      const interval = Number(pokGetConfig().POK_WIDGETS_POLL_MS) || DEFAULT_POLL_MS;
      const load = () => {
        pokGetAuthenticatedHttpClient().get(credentialsUrl(courseId)).then(({ data }) => {
          if (stopped) { return; }
          setState({ answer: data, refreshing: false, failed: false });
          if (data.results.some((item) => ON_ITS_WAY.includes(item.status)) && polls < MAX_POLLS) {
            polls += 1;
            timer = setTimeout(() => {
              setState((current) => ({ ...current, refreshing: true }));
              load();
            }, interval);
          }
        }).catch(() => {
          if (!stopped) { setState((current) => ({ ...current, refreshing: false, failed: true })); }
        });
      };
      load();
      return () => { stopped = true; clearTimeout(timer); };
    }, [courseId]);
    return state;
  }

  // The loading and error lines, once there is an answer to take their words from (a live region: read out).
  function Progress({ state, labels }) {
    let text = '';
    if (state.failed) { text = labels.error; } else if (state.refreshing) { text = labels.loading; }
    return h('p', { role: 'status', className: 'pok-widget-progress small', style: text ? styles.note : {} }, text);
  }

  function ShareLinks({ item, labels, describedBy }) {
    if (!item.emitted || !item.view_url) { return null; }
    return h('p', { className: 'pok-credential-links', style: styles.links },
      h('a', { className: 'btn btn-primary btn-sm', href: item.view_url, 'aria-describedby': describedBy },
        labels.open),
      item.linkedin_url ? h('a', {
        className: 'btn btn-outline-primary btn-sm', href: item.linkedin_url, target: '_blank',
        rel: 'noopener noreferrer', 'aria-describedby': describedBy,
      }, labels.share_linkedin) : null);
  }

  function NextStep({ item }) {
    if (!item.action || item.next_step === 'view') { return null; }
    return h('p', { className: 'pok-credential-action', style: styles.text },
      h('a', { href: item.action.url }, item.action.label));
  }

  function CredentialStatus({ courseId }) {
    const state = useCredentials(courseId);
    const { answer } = state;
    if (!answer || !answer.results.length) { return null; }
    const item = answer.results[0];
    const { labels } = answer;
    const headingId = `pok-credential-${item.reference}`;
    return h('section', {
      className: 'pok-credential-status', 'aria-labelledby': headingId, 'data-status': item.status,
      'data-next-step': item.next_step, style: styles.card,
    },
    h('h2', { id: headingId, style: styles.heading }, item.title),
    h('p', { className: 'pok-credential-state', style: styles.text },
      `${labels.status}: `, h('strong', null, item.status_label)),
    h('p', { className: 'pok-credential-message', style: styles.text }, item.message),
    h(NextStep, { item }),
    h(ShareLinks, { item, labels, describedBy: headingId }),
    h(Progress, { state, labels }));
  }

  function MyCredentials() {
    const state = useCredentials(null);
    const { answer } = state;
    if (!answer || !answer.results.length) { return null; }
    const { labels } = answer;
    return h('section', {
      className: 'pok-my-credentials', 'aria-labelledby': 'pok-my-credentials-heading', style: styles.card,
    },
    h('h2', { id: 'pok-my-credentials-heading', style: styles.heading }, labels.heading),
    h('ul', { style: styles.list }, answer.results.map((item) => {
      const nameId = `pok-my-credential-${item.reference}`;
      return h('li', {
        key: item.reference, className: 'pok-my-credential', 'data-status': item.status, style: styles.item,
      },
      h('p', { id: nameId, style: { ...styles.text, fontWeight: 600 } }, item.course_name || item.course_id),
      h('p', { className: 'pok-credential-state', style: styles.text },
        `${labels.status}: `, h('strong', null, item.status_label)),
      h(NextStep, { item }),
      h(ShareLinks, { item, labels, describedBy: nameId }));
    })),
    h(Progress, { state, labels }));
  }

  return { CredentialStatus, MyCredentials };
})();
