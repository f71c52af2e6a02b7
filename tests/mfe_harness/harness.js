// The stand-in MFE page: loads the rendered env.config.jsx (alias 'pok-env-config', built for one APP_ID), then mounts
// this MFE's slot the way frontend-plugin-framework's PluginSlot does: the slot's default content (id
// 'default_contents', priority 50) plus the config's operations, each Insert validated as FPF validates it (id,
// priority, type; a DIRECT_PLUGIN's RenderWidget a function), sorted by priority then id, each DIRECT_PLUGIN widget
// rendered as <RenderWidget id={id} {...pluginProps} />. The operations and widgets are listed on the window
// (window.pokHarness) for the test to read.
import React from 'react';
import { createRoot } from 'react-dom/client';
import setConfig from 'pok-env-config';
import { PLUGIN_OPERATIONS } from '@openedx/frontend-plugin-framework';

const h = React.createElement;

const SLOTS = {
  learning: {
    id: 'org.openedx.frontend.learning.progress_certificate_status.v1',
    pluginProps: () => ({ courseId: new URLSearchParams(window.location.search).get('course_id') }),
    // What the progress page shows there by default: the certificate status card.
    defaultContent: () => h('div', { className: 'default-card', 'data-widget': 'default_contents' },
      h('h2', null, 'Certificate status'), h('p', null, 'You are eligible for a certificate.')),
  },
  'learner-dashboard': {
    id: 'org.openedx.frontend.learner_dashboard.widget_sidebar.v1',
    pluginProps: () => ({}),
    // The dashboard's own side widgets.
    defaultContent: () => h('div', { className: 'default-card', 'data-widget': 'default_contents' },
      h('h2', null, 'Looking for a new challenge?'), h('p', null, 'Explore courses.')),
  },
};

const REQUIRED = { id: 'string', priority: 'number', type: 'string' };

function valid(widget) {
  return Object.entries(REQUIRED).every(([field, type]) => widget && typeof widget[field] === type)
    && (widget.type !== 'DIRECT_PLUGIN' || typeof widget.RenderWidget === 'function');
}

function organize(defaultContent, plugins) {
  const contents = [{ id: 'default_contents', priority: 50, type: 'DEFAULT', render: defaultContent }];
  plugins.forEach((change) => {
    if (change.op === PLUGIN_OPERATIONS.Insert) {
      if (valid(change.widget)) { contents.push(change.widget); }
    } else if (change.op === PLUGIN_OPERATIONS.Hide) {
      const widget = contents.find((w) => w.id === change.widgetId);
      if (widget) { widget.hidden = true; }
    }
  });
  return contents.sort((a, b) => (a.priority - b.priority) * 10000 + a.id.localeCompare(b.id));
}

async function main() {
  const slot = SLOTS[process.env.APP_ID];
  const config = await setConfig();
  const slotConfig = config.pluginSlots[slot.id] || { keepDefault: true, plugins: [] };
  const widgets = organize(slot.defaultContent, slotConfig.plugins);
  window.pokHarness = {
    slot: slot.id,
    operations: slotConfig.plugins.map((change) => ({ op: change.op, id: change.widget ? change.widget.id : null,
      type: change.widget ? change.widget.type : null })),
    shown: widgets.filter((w) => !w.hidden).map((w) => w.id),
  };
  const pluginProps = slot.pluginProps();
  const children = widgets.filter((w) => !w.hidden).map((widget) => h('div', {
    key: widget.id, 'data-plugin-id': widget.id,
  }, widget.type === 'DEFAULT' ? widget.render() : h(widget.RenderWidget, { id: widget.id, ...pluginProps })));
  createRoot(document.getElementById('slot')).render(h('div', { 'data-slot': slot.id }, children));
  window.pokHarness.mounted = true;
}

main().catch((error) => { window.pokHarness = { error: String(error) }; });
