"""
A stand-in MFE for the browser tests of the learner widgets (tests/test_browser_mfe_widgets.py): the env.config.jsx
that the real tutor and tutor-mfe render with the Tutor plugin, bundled by esbuild with a small slot host that mounts
the slots as frontend-plugin-framework does, served by the live server so that the learner's session applies. Test
code only: nothing of it is in the plugin's wheel.
"""
