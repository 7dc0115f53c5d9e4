// /ui/timetravel: the page is server-rendered. This file only brings the answered section into view when
// the page was opened without a fragment (a link to a diff or an as-of view lands on its answer).
"use strict";

(() => {
  if (location.hash) return;
  const answered = document.querySelector("section.tt h3");
  const section = answered && answered.closest("section.tt");
  if (section && section.id !== "history") section.scrollIntoView();
})();
