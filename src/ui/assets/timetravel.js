// /ui/timetravel: the page is server-rendered; this file only keeps the section a form or link jumps to in view.
"use strict";

(() => {
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target) target.scrollIntoView();
})();
