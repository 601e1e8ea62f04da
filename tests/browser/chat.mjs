// The chat page in a real browser (tests/test_browser.py runs this; see there).
//
//   node chat.mjs http://127.0.0.1:PORT/
//
// Two pages join a room; one sends, the other shows the message. Then the server restarts:
// the script prints "STOP" and waits for a line on stdin (the test stops the server), checks
// that both pages are no longer online, prints "START" and waits for another line (the test
// starts the server again on the same port). Both pages must come back online by
// themselves and chat again.
// Every step is bounded; any failure exits with status 1 and says which step.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const base = process.argv[2];
const STEP = 15000; // ms, for each wait
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const profile = mkdtempSync(join(tmpdir(), "trio-ws-chromium-"));
// Every HTTP error the pages meet: the page must load with none (Chromium does not report
// its favicon request here; the page declares an inline icon so that none is made).
const httpErrors = [];

function step(name) {
  console.log(`step: ${name}`);
}

async function openChat(context, name, room) {
  const page = await context.newPage();
  page.on("console", (m) => console.log(`[${name} console] ${m.text()}`));
  page.on("response", (r) => {
    if (r.status() >= 400) httpErrors.push(`${name}: ${r.status()} ${r.url()}`);
  });
  await page.goto(base, { timeout: STEP });
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#join button");
  await waitStatus(page, "online");
  return page;
}

async function waitStatus(page, status, negate = false) {
  await page.waitForFunction(
    ([s, not]) => (document.getElementById("status").textContent === s) !== not,
    [status, negate],
    { timeout: STEP },
  );
}

async function nextLine() {
  const line = await lines.next();
  if (line.done) throw new Error("stdin ended: the test went away");
}

async function waitMessage(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === t),
    text,
    { timeout: STEP },
  );
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.click("#send-button");
}

let context;
let failed = false;
try {
  // A persistent context is how a user-data-dir of our own is given: a fresh profile.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: STEP,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  step("two pages join room r1");
  const ann = await openChat(context, "ann", "r1");
  const bob = await openChat(context, "bob", "r1");
  await waitMessage(ann, "* bob joined");
  step("ann sends, bob sees it");
  await say(ann, "hello from ann");
  await waitMessage(bob, "ann: hello from ann");
  await waitMessage(ann, "ann: hello from ann");
  if (httpErrors.length) throw new Error(`HTTP errors: ${httpErrors.join(", ")}`);

  console.log("STOP");
  await nextLine();
  step("the server went away: neither page is online");
  await Promise.all([waitStatus(ann, "online", true), waitStatus(bob, "online", true)]);
  console.log("START");
  await nextLine();
  step("both pages reconnect by themselves");
  await Promise.all([waitStatus(ann, "online"), waitStatus(bob, "online")]);
  step("bob sends, ann sees it");
  await say(bob, "bob is back");
  await waitMessage(ann, "bob: bob is back");
  if (httpErrors.length) throw new Error(`HTTP errors: ${httpErrors.join(", ")}`);
  console.log("OK");
} catch (error) {
  failed = true;
  console.log(`FAILED: ${error.stack || error}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
