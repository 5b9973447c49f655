// The admin dashboard: signs in with an admin key, then polls the JSON API and redraws.
// Everything is built with DOM calls and textContent (no HTML from data), and nothing is
// inline, so the server's CSP (`script-src 'self'`) holds.

import { ApiError, call, key, query } from "./api.js";
import { bars, line } from "./charts.js";

const REFRESH_MS = 1500;
const $ = (selector) => document.querySelector(selector);

const state = { view: null, jobsShown: 25, transcripts: new Map(), timer: null, busy: false };

// ---- small DOM helpers ----------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

function show(id) {
  for (const view of ["login-view", "overview-view", "job-view"]) {
    $("#" + view).hidden = view !== id;
  }
  const signedIn = id !== "login-view";
  $("#logout").hidden = !signedIn;
  $("#live").hidden = !signedIn;
}

function problem(message) {
  const banner = $("#problem");
  banner.textContent = message || "";
  banner.hidden = !message;
}

function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function ago(at) {
  if (!at) return "–";
  return seconds(Math.max(0, (Date.now() - Date.parse(at)) / 1000)) + " ago";
}

function time(at) {
  return h("time", { datetime: at, title: at ? new Date(at).toLocaleString() : "" }, ago(at));
}

function bytes(n) {
  if (!n) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}

function status(job) {
  return h("span", { class: `status ${job.status}` }, job.status);
}

function progress(job) {
  const share = job.status === "succeeded" ? 1 : job.progress || 0;
  const label = job.status === "queued" && job.queue_position
    ? `#${job.queue_position} in queue`
    : `${Math.round(share * 100)} %`;
  const bar = h("span", { class: "meter" }, h("span", { class: `fill ${job.status}` }));
  bar.firstChild.style.width = `${share * 100}%`;
  return h("span", { class: "progress" }, bar, h("span", { class: "progress-label" }, label));
}

function jobLink(id) {
  return h("a", { href: `#/jobs/${id}`, class: "mono" }, id);
}

/** The action a job's state allows: cancel while it may still run, retry once it gave up. */
function actionsFor(job, onDone) {
  const act = (verb) => async (event) => {
    event.preventDefault();
    event.target.disabled = true;
    try {
      await call("POST", `/v1/jobs/${job.id}/${verb}`);
      problem(null);
    } catch (err) {
      problem(`${verb} ${job.id}: ${err.message}${err.code ? ` (${err.code})` : ""}`);
    }
    await onDone();
  };
  if (job.status === "queued" || job.status === "running") {
    return h("button", { type: "button", class: "danger small", dataset: { action: "cancel" }, onclick: act("cancel") }, "Cancel");
  }
  if ((job.status === "failed" || job.status === "canceled") && !job.deleted_at) {
    return h("button", { type: "button", class: "small", dataset: { action: "retry" }, onclick: act("retry") }, "Retry");
  }
  return "";
}

// ---- signing in -------------------------------------------------------------------------

/** Whether `secret` is an admin key: null if so, else why not, in words. */
async function refusal(secret) {
  try {
    await call("GET", "/v1/admin/stats?minutes=1", secret);
    return null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      return "This is not an admin key: the dashboard needs a key with the admin role.";
    }
    if (err instanceof ApiError && err.status === 401) {
      return "This key is not valid: unknown, revoked or expired.";
    }
    return `The server could not check the key: ${err.message}`;
  }
}

async function signIn(event) {
  event.preventDefault();
  const secret = $("#key").value.trim();
  const why = await refusal(secret);
  const error = $("#login-error");
  error.textContent = why || "";
  error.hidden = !why;
  if (why) return;
  key.set(secret);
  $("#key").value = "";
  await route();
}

function signOut() {
  key.clear();
  state.transcripts.clear();
  clearTimeout(state.timer);
  location.hash = "#/";
  show("login-view");
}

// ---- the overview -----------------------------------------------------------------------

async function refreshOverview() {
  const filter = $("#status-filter").value;
  const [stats, workers, running, failures, jobs] = await Promise.all([
    call("GET", "/v1/admin/stats?minutes=60"),
    call("GET", "/v1/workers"),
    call("GET", "/v1/jobs?status=running&limit=100"),
    call("GET", "/v1/jobs?status=failed&limit=8"),
    call("GET", "/v1/jobs" + query({ status: filter, limit: state.jobsShown })),
  ]);
  if (state.view !== "overview") return;

  const buckets = stats.buckets;
  const sum = (f) => buckets.reduce((total, b) => total + f(b), 0);
  $("#stat-queued").textContent = stats.queued;
  $("#stat-running").textContent = stats.running;
  $("#stat-oldest").textContent = seconds(stats.oldest_queued_age_seconds);
  $("#stat-finished").textContent = `${sum((b) => b.succeeded)} ✓ / ${sum((b) => b.failed)} ✗`;
  $("#stat-audio").textContent = seconds(sum((b) => b.audio_seconds));
  const times = buckets.map((b) => b.end);
  line($("#chart-queue"), times, buckets.map((b) => b.queue_depth), "queued");
  bars($("#chart-jobs"), times, [
    { values: buckets.map((b) => b.succeeded), className: "ok", label: "succeeded" },
    { values: buckets.map((b) => b.failed), className: "bad", label: "failed" },
  ]);
  bars($("#chart-audio"), times, [
    { values: buckets.map((b) => b.audio_seconds), className: "audio", label: "s of audio" },
  ]);

  const byId = new Map(running.jobs.map((job) => [job.id, job]));
  $("#workers tbody").replaceChildren(...(workers.workers.length
    ? workers.workers.map((w) => workerRow(w, byId))
    : [h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No live workers"))]));

  $("#failures tbody").replaceChildren(...(failures.jobs.length
    ? failures.jobs.map((job) => h("tr", { dataset: { job: job.id } },
      h("td", {}, jobLink(job.id)),
      h("td", {}, h("code", { class: "error-code" }, job.error ? job.error.code : "–"),
        h("div", { class: "muted" }, job.error ? job.error.message : "")),
      h("td", {}, time(job.finished_at))))
    : [h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No failed jobs"))]));

  $("#jobs tbody").replaceChildren(...(jobs.jobs.length
    ? jobs.jobs.map((job) => h("tr", { dataset: { job: job.id, status: job.status } },
      h("td", {}, jobLink(job.id)),
      h("td", {}, status(job)),
      h("td", {}, progress(job)),
      h("td", { class: "file" }, job.filename || "–"),
      h("td", {}, seconds(job.duration)),
      h("td", {}, job.tenant || "–"),
      h("td", {}, time(job.created_at)),
      h("td", {}, actionsFor(job, refresh))))
    : [h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No jobs"))]));
  $("#more").hidden = !jobs.next_cursor || state.jobsShown >= 100;
}

/** A worker's row; its speed is the audio its jobs got through per second of their run. */
function workerRow(w, running) {
  const jobs = (w.current_jobs || []).map((id) => running.get(id)).filter(Boolean);
  const speeds = jobs
    .filter((job) => job.duration && job.started_at)
    .map((job) => (job.progress * job.duration) / Math.max(1, (Date.now() - Date.parse(job.started_at)) / 1000));
  const speed = speeds.length ? `${speeds.reduce((a, b) => a + b, 0).toFixed(1)}× real time` : "–";
  const memory = w.device_memory
    ? `${bytes(w.device_memory.used_bytes)} / ${bytes(w.device_memory.total_bytes)}`
    : "–";
  return h("tr", { dataset: { worker: w.id } },
    h("td", {}, h("div", { class: "mono" }, w.hostname), h("div", { class: "muted" }, `up ${ago(w.started_at).replace(" ago", "")}`)),
    h("td", {}, w.device),
    h("td", { class: "file", title: w.model }, w.model.split("/").pop()),
    h("td", {}, memory),
    h("td", {}, ...(w.current_jobs.length
      ? w.current_jobs.map((id) => h("div", {}, jobLink(id), running.get(id) ? progress(running.get(id)) : ""))
      : ["idle"])),
    h("td", {}, speed));
}

// ---- one job ------------------------------------------------------------------------------

async function refreshJob(id) {
  const [job, deliveries] = await Promise.all([
    call("GET", `/v1/jobs/${encodeURIComponent(id)}`),
    call("GET", "/v1/webhooks/deliveries" + query({ job_id: id, limit: 50 })),
  ]);
  if (state.view !== `job:${id}`) return;
  $("#job-id").textContent = job.id;
  $("#job-status").replaceWith(Object.assign(status(job), { id: "job-status" }));
  $("#job-progress").replaceChildren(progress(job));
  $("#job-error").hidden = !job.error;
  $("#job-error-code").textContent = job.error ? job.error.code : "";
  $("#job-error-message").textContent = job.error ? job.error.message : "";
  const cancelable = job.status === "queued" || job.status === "running";
  const retryable = (job.status === "failed" || job.status === "canceled") && !job.deleted_at;
  $("#job-cancel").hidden = !cancelable;
  $("#job-retry").hidden = !retryable;
  $("#job-cancel").disabled = $("#job-retry").disabled = false;

  const fields = [
    ["Tenant", job.tenant || "–"],
    ["File", job.filename || "–"],
    ["Audio", `${seconds(job.duration)}, ${bytes(job.audio_bytes)}`],
    ["Decoder", job.decoder || "model's default"],
    ["Attempts", String(job.attempts)],
    ["Submitted", time(job.created_at)],
    ["Started", time(job.started_at)],
    ["Finished", time(job.finished_at)],
    ["Estimated completion", job.estimated_completion_at ? new Date(job.estimated_completion_at).toLocaleTimeString() : "–"],
    ["Callback URL", job.callback_url || "–"],
    ["Data deleted", job.deleted_at ? time(job.deleted_at) : "no"],
    ["Metadata", job.metadata ? JSON.stringify(job.metadata) : "–"],
  ];
  $("#job-fields").replaceChildren(...fields.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));

  const transcript = $("#job-transcript");
  if (job.status === "succeeded" && !job.deleted_at) {
    if (!state.transcripts.has(id)) {
      state.transcripts.set(id, await call("GET", `/v1/jobs/${encodeURIComponent(id)}/transcript?format=text`));
    }
    transcript.textContent = state.transcripts.get(id);
  } else {
    transcript.textContent = job.status === "succeeded" ? "Deleted." : `No transcript: the job is ${job.status}.`;
  }

  $("#job-deliveries tbody").replaceChildren(...(deliveries.deliveries.length
    ? deliveries.deliveries.map((d) => h("tr", { dataset: { delivery: d.id } },
      h("td", {}, d.event),
      h("td", { class: "file", title: d.url }, d.webhook_id ? d.url : `${d.url} (callback)`),
      h("td", {}, h("span", { class: `status ${d.status}` }, d.status)),
      h("td", {}, String(d.attempts)),
      h("td", {}, d.last_error || (d.last_status_code ? `HTTP ${d.last_status_code}` : "–"))))
    : [h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No deliveries"))]));
}

async function jobAction(verb) {
  const id = $("#job-id").textContent;
  $("#job-" + verb).disabled = true;
  try {
    await call("POST", `/v1/jobs/${encodeURIComponent(id)}/${verb}`);
    problem(null);
  } catch (err) {
    problem(`${verb}: ${err.message} (${err.code})`);
  }
  await refresh();
}

// ---- routing and polling ----------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  if (!key.get()) return;
  if (!state.busy) {
    state.busy = true;
    try {
      if (state.view === "overview") await refreshOverview();
      else if (state.view && state.view.startsWith("job:")) await refreshJob(state.view.slice(4));
      $("#live").classList.remove("stale");
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        signOut();
        const error = $("#login-error");
        error.textContent = `Signed out: ${err.message}`;
        error.hidden = false;
        return;
      }
      $("#live").classList.add("stale");
      problem(`Could not refresh: ${err.message}`);
    } finally {
      state.busy = false;
    }
  }
  state.timer = setTimeout(refresh, REFRESH_MS);
}

async function route() {
  if (!key.get()) {
    show("login-view");
    $("#key").focus();
    return;
  }
  const match = location.hash.match(/^#\/jobs\/([0-9A-Za-z]+)$/);
  state.view = match ? `job:${match[1]}` : "overview";
  show(match ? "job-view" : "overview-view");
  problem(null);
  await refresh();
}

async function start() {
  $("#login-form").addEventListener("submit", signIn);
  $("#logout").addEventListener("click", signOut);
  $("#status-filter").addEventListener("change", () => refresh());
  $("#more").addEventListener("click", () => {
    state.jobsShown = Math.min(100, state.jobsShown + 25);
    refresh();
  });
  $("#job-cancel").addEventListener("click", () => jobAction("cancel"));
  $("#job-retry").addEventListener("click", () => jobAction("retry"));
  window.addEventListener("hashchange", route);
  // A key kept from before this reload is checked again: it may have been revoked.
  const kept = key.get();
  if (kept && (await refusal(kept))) key.clear();
  await route();
}

start();
