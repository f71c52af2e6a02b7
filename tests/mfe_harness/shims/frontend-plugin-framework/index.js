// '@openedx/frontend-plugin-framework' of the harness: the constants env.config.jsx imports, as FPF defines them
// (src/plugins/data/constants.js).
export const IFRAME_PLUGIN = 'IFRAME_PLUGIN';
export const DIRECT_PLUGIN = 'DIRECT_PLUGIN';
export const PLUGIN_OPERATIONS = { Insert: 'insert', Hide: 'hide', Modify: 'modify', Wrap: 'wrap' };
