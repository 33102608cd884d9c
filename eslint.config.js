// ESLint for the page scripts, webmap/static/*.js (the vendored libraries are not ours):
// the recommended rules, the browser's globals, and the globals the scripts share.
// Run by ./scripts/check-js.
"use strict";

const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  {ignores: ["webmap/static/vendor/**"]},
  {
    ...js.configs.recommended,
    files: ["webmap/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",  // classic <script> tags sharing one global scope
      globals: {
        ...globals.browser,
        L: "readonly",              // Leaflet, with the plugins each page loads
        safegridTools: "readonly",  // tools.js, loaded before the scripts that use it
      },
    },
  },
  {
    files: ["webmap/static/tools.js"],
    languageOptions: {globals: {safegridTools: "off"}},  // it is declared here
  },
];
