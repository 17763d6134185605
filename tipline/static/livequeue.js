/* The staff queue, live. Polls the queue's rows every 3 s with the ETag of the last answer
   (304 while nothing this login may view changed) and swaps them in; a new critical tip
   raises the banner, puts the count in the page title and, if the user turned it on, beeps.
   Served from this origin under the queue page's CSP (script-src 'self'): no inline script,
   no third-party code, no eval, no audio file (the beep is made with WebAudio).
   Without JavaScript the page's Refresh link does the same by hand. */
(function () {
  "use strict";

  var POLL_MS = 3000;
  var region = document.getElementById("live-queue");
  if (!region || !window.fetch || !window.DOMParser) {
    return;
  }
  var url = region.getAttribute("data-live-url");
  var tag = region.getAttribute("data-etag");
  var etag = tag ? '"' + tag + '"' : null; // the page's own rows: the first poll is a 304
  var statusLine = document.getElementById("queue-status");
  var soundButton = document.getElementById("queue-sound");
  var baseTitle = document.title.replace(/^\(\d+\+?\) /, "");
  var known = criticalIds(document.getElementById("live-fragment"));
  var AudioCtx = window.AudioContext || window.webkitAudioContext;
  var audio = null; // made only when the user turns sound on: no autoplay without their choice
  var soundOn = false;

  function criticalIds(fragment) {
    var value = fragment ? fragment.getAttribute("data-critical-ids") || "" : "";
    return value.split(" ").filter(function (id) {
      return id !== "";
    });
  }

  function say(text) {
    if (statusLine) {
      statusLine.textContent = text;
    }
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function setTitle(fragment) {
    var count = fragment ? fragment.getAttribute("data-critical") || "" : "";
    document.title = count ? "(" + count + ") " + baseTitle : baseTitle;
  }

  function beep() {
    if (!soundOn || !audio) {
      return;
    }
    var start = audio.currentTime;
    [0, 0.3, 0.6].forEach(function (offset) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = offset === 0.3 ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.22);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.25);
    });
  }

  function soundLabel() {
    soundButton.textContent = "Sound for new critical tips: " + (soundOn ? "on" : "off");
    soundButton.setAttribute("aria-pressed", soundOn ? "true" : "false");
  }

  if (soundButton && AudioCtx) {
    soundButton.hidden = false;
    soundButton.addEventListener("click", function () {
      soundOn = !soundOn;
      if (soundOn) {
        audio = audio || new AudioCtx(); // created inside the click, so the browser allows it
        audio.resume();
        beep(); // what to listen for
      }
      soundLabel();
    });
  }

  // Ages ("3m", "5h", "2d") move on between answers, which only change when the rows do.
  function age(then, now) {
    var seconds = Math.max(0, Math.floor((now - then) / 1000));
    if (seconds < 3600) {
      return Math.floor(seconds / 60) + "m";
    }
    if (seconds < 86400) {
      return Math.floor(seconds / 3600) + "h";
    }
    return Math.floor(seconds / 86400) + "d";
  }

  function refreshAges() {
    var now = Date.now();
    var times = region.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var stamp = times[i].getAttribute("datetime");
      if (!/(Z|[+-]\d\d:?\d\d)$/.test(stamp)) {
        stamp += "Z"; // stored in UTC
      }
      var then = Date.parse(stamp);
      if (!isNaN(then)) {
        times[i].textContent = age(then, now);
      }
    }
  }

  function apply(html) {
    var doc = new DOMParser().parseFromString(html, "text/html"); // inert: runs nothing
    var fresh = doc.getElementById("live-fragment");
    var current = document.getElementById("live-fragment");
    if (!fresh || !current) {
      return;
    }
    var ids = criticalIds(fresh);
    var added = ids.filter(function (id) {
      return known.indexOf(id) < 0;
    });
    var node = document.importNode(fresh, true);
    var banner = node.querySelector(".critical-banner");
    if (banner && added.length) {
      banner.classList.add("critical-banner--new");
    } else if (banner) {
      banner.removeAttribute("role"); // announced when it was new, not again on every change
    }
    current.parentNode.replaceChild(node, current);
    known = ids;
    setTitle(node);
    if (added.length) {
      beep();
    }
  }

  function schedule() {
    window.setTimeout(poll, POLL_MS);
  }

  function poll() {
    var headers = { Accept: "text/html" };
    if (etag) {
      headers["If-None-Match"] = etag;
    }
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store", redirect: "error" })
      .then(function (response) {
        if (response.status === 304) {
          refreshAges();
          say("Up to date at " + clock());
          schedule();
          return null;
        }
        if (response.status === 401) {
          // The session ended (sign-out, or idle: polling does not count as activity).
          say("Your session has ended. Reload the page to sign in again.");
          return null;
        }
        if (!response.ok) {
          say("Could not update at " + clock() + "; trying again.");
          schedule();
          return null;
        }
        etag = response.headers.get("ETag");
        return response.text().then(function (html) {
          apply(html);
          refreshAges();
          say("Updated at " + clock());
          schedule();
        });
      })
      .catch(function () {
        say("No connection at " + clock() + "; trying again.");
        schedule();
      });
  }

  schedule();
})();
