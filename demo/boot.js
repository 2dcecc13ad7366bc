/*
 * boot.js: a classic script that runs before the page's modules, for the two ways of opening
 * the page in which they cannot run at all: as a file (file://, where browsers refuse modules)
 * and from a server whose root is demo/ (js/ and data/ are then out of reach). In both it says
 * what to run and which URL to open. It also defines showDemoError, which main.mjs uses too.
 */
"use strict";

/** The URL that `make demo` prints, on its default port. */
var DEMO_URL = "http://127.0.0.1:8000/demo/";

/** Show one sentence instead of the page, its `quoted` parts as code; record it for the tests. */
window.showDemoError = function (message) {
  var error = document.getElementById("error");
  error.replaceChildren.apply(
    error,
    message.split("`").map(function (part, i) {
      if (i % 2 === 0) {
        return part;
      }
      var code = document.createElement("code");
      code.textContent = part;
      return code;
    }),
  );
  error.hidden = false;
  document.getElementById("source").textContent = "The network could not be loaded.";
  document.getElementById("demo").hidden = true;
  window.demoState = { status: "error", error: message };
};

/** The repository's folder, from the address of demo/index.html opened as a file. */
function repositoryFolder() {
  var path = decodeURIComponent(window.location.pathname);
  return path.replace(/\/demo\/(index\.html)?$/, "") || "/";
}

if (window.location.protocol === "file:") {
  document.addEventListener("DOMContentLoaded", function () {
    window.showDemoError(
      "This page was opened as a file, and browsers do not run its modules from files: in " +
        "a terminal, run `make demo` in `" + repositoryFolder() + "` and open `" + DEMO_URL +
        "`.",
    );
  });
} else {
  // A module script that cannot be fetched fires `error` at its <script> element.
  window.addEventListener(
    "error",
    function (event) {
      if (!(event.target instanceof HTMLScriptElement)) {
        return;
      }
      var where = window.location.pathname.indexOf("/demo/") < 0
        ? "This server's root is the demo/ folder, so the page cannot load js/ and data/ " +
          "beside it: stop it, "
        : "The page's modules could not be loaded from " + window.location.origin + ": ";
      window.showDemoError(
        where + "run `make demo` in the repository's folder and open `" + DEMO_URL + "`.",
      );
    },
    true,
  );
}
