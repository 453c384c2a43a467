// Drives the s3-connector console in headless Chromium (playwright-core, Debian's chromium):
// the page loads without console errors, asks for the token, lists the connectors, connects a
// bucket through the form (probe passes), changes its interval, a search shows highlighted hits,
// a semantic and a hybrid search of the connector `meaning` (created by scripts/api-test with
// `embedding: {provider: local}`) show passages whose folded text unfolds, and a role that
// trusts another ExternalId shows its failing probe step; a tenant's token sees none of the
// operator's connectors and its own ExternalId. Called by scripts/api-test with one
// JSON argument; writes PNG screenshots into `screenshots`.
import { createRequire } from "node:module";

const args = JSON.parse(process.argv[2]);
// playwright-core lives in the npm cache directory, not beside this script.
const { chromium } = createRequire(args.playwright + "/")("playwright-core");
const problems = [];
const fail = (message) => { throw new Error(message); };

const browser = await chromium.launch({
  executablePath: args.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  page.on("console", (message) => {
    // The browser reports the expected 422 of a failing probe as a console error of its own.
    if (message.type() === "error" && !/status of 422/.test(message.text())) {
      problems.push(`${message.text()} (${message.location().url})`);
    }
  });
  page.on("pageerror", (error) => problems.push(String(error)));
  page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));
  page.on("request", (request) => {
    if (!request.url().startsWith(args.url)) problems.push(`outside request: ${request.url()}`);
  });
  const wait = { timeout: 60000 };

  await page.goto(args.url + "/");
  await page.locator("#login").waitFor(wait);
  await page.fill("#token", args.token);
  await page.click("#login-form button");
  await page.locator('#connectors tbody tr[data-id="team-docs"]').waitFor(wait);
  console.log("console: lists the file connector");

  // Connect a bucket: the set-up instructions, then the form, then the probe's steps.
  await page.click("#nav-connect");
  await page.locator("#setup-external-id", { hasText: args.external_id }).waitFor(wait);
  const form = "#connect-form";
  await page.fill(`${form} [name=id]`, "acme");
  await page.fill(`${form} [name=bucket_uri]`, `s3://${args.bucket}/reports/`);
  await page.fill(`${form} [name=role_arn]`, args.good_role);
  await page.fill(`${form} [name=expected_bucket_owner]`, args.owner);
  await page.fill(`${form} [name=interval]`, "1h");
  await page.click(`${form} button`);
  await page.locator("#connect-result.ok").waitFor(wait);
  const passed = await page.locator("#probe li.step.pass").count();
  if (passed < 3) fail(`expected the probe's passing steps, saw ${passed}`);
  console.log(`console: connected a bucket, ${passed} probe steps passed`);

  // The new connector syncs at once; its row shows the outcome and counts.
  await page.click("#nav-connectors");
  const row = page.locator('#connectors tbody tr[data-id="acme"]');
  for (let i = 0; i < 120; i++) {
    await page.click("#refresh");
    await page.waitForTimeout(500);
    if ((await row.locator("td").nth(2).textContent()) === "succeeded") break;
  }
  if ((await row.locator("td").nth(2).textContent()) !== "succeeded") fail("the new connector's first sync did not succeed");
  await row.click();
  await page.locator("#history-rows tr").first().waitFor(wait);
  await page.screenshot({ path: `${args.screenshots}/console-connectors.png` });
  console.log("console: the connector synced; its history shows");

  // Change its interval: only that field is sent, nothing is probed, the next run moves.
  await page.fill("#edit-form [name=interval]", "2h");
  await page.click("#edit-form button");
  await page.locator("#edit-result.ok").waitFor(wait);
  const changed = await page.locator("#edit-result").textContent();
  if (/probed again/.test(changed)) fail(`an interval change was probed: ${changed}`);
  console.log("console: an edit changed the interval");

  // Search with highlighted hits.
  await page.click("#nav-search");
  await page.locator('#search-connector option[value="acme"]').waitFor({ ...wait, state: "attached" });
  await page.selectOption("#search-connector", "acme");
  await page.fill("#search-q", "quarterly figures");
  await page.click("#search-form button");
  await page.locator("#hits li").first().waitFor(wait);
  const marks = await page.locator("#hits mark").allTextContents();
  if (!marks.some((m) => m.toLowerCase() === "quarterly")) fail(`no highlighted term in the hits: ${marks}`);
  // An index synced without `embedding:` answers in keyword mode by default.
  const searchStatus = await page.locator("#search-status").textContent();
  if (!/keyword/.test(searchStatus)) fail(`the search status names no keyword mode: ${searchStatus}`);
  await page.screenshot({ path: `${args.screenshots}/console-search.png` });
  console.log(`console: search shows ${await page.locator("#hits li").count()} hit(s) with ${marks.length} highlighted term(s)`);
  // The mode switch reaches the API (a refused semantic search would be a console error).
  await page.selectOption("#search-mode", "keyword");
  const answered = page.waitForResponse((r) => r.url().includes("mode=keyword") && r.status() === 200, wait);
  await page.click("#search-form button");
  await answered;
  await page.locator("#hits mark").first().waitFor(wait);
  await page.selectOption("#search-mode", "");
  console.log("console: the mode switch asks for a keyword search and shows its hits");

  // Passages by meaning: the connector with `embedding:` (synced with the local model before
  // this test started), a semantic search, a hit unfolded to its passage text, then hybrid.
  await page.selectOption("#search-connector", "meaning");
  await page.fill("#search-q", "which spending did the directors agree to");
  await page.selectOption("#search-mode", "semantic");
  const semantic = page.waitForResponse((r) => r.url().includes("mode=semantic") && r.status() === 200, wait);
  await page.click("#search-form button");
  await semantic;
  await page.locator("#hits li").first().waitFor(wait);
  const semanticStatus = await page.locator("#search-status").textContent();
  if (!/semantic/.test(semanticStatus)) fail(`the search status names no semantic mode: ${semanticStatus}`);
  const first = page.locator("#hits li").first();
  const firstKey = await first.locator(".key").textContent();
  if (!/minutes\.html$/.test(firstKey)) fail(`the board's minutes are not the best passage by meaning: ${firstKey}`);
  const passageText = first.locator("details.passage .text");
  if (await passageText.isVisible()) fail("a passage's text is shown before it is unfolded");
  await first.locator("details.passage summary").click();
  await passageText.waitFor({ ...wait, state: "visible" });
  const unfolded = await passageText.textContent();
  if (!/The board approved the budget/.test(unfolded)) fail(`the unfolded passage text is not the minutes': ${unfolded}`);
  await page.screenshot({ path: `${args.screenshots}/console-passage.png` });
  console.log(`console: a semantic search unfolds the passage text "${unfolded.trim()}"`);
  await page.selectOption("#search-mode", "hybrid");
  const hybrid = page.waitForResponse((r) => r.url().includes("mode=hybrid") && r.status() === 200, wait);
  await page.click("#search-form button");
  await hybrid;
  await page.locator("#search-status", { hasText: "hybrid" }).waitFor(wait);
  if ((await page.locator("#hits details.passage").count()) === 0) fail("a hybrid search shows no passage");
  await page.selectOption("#search-mode", "");
  console.log("console: the mode switch asks for a hybrid search and shows passages");

  // A role that trusts another ExternalId: the failing step is shown, nothing is stored.
  await page.click("#nav-connect");
  await page.fill(`${form} [name=id]`, "wrong-external-id");
  await page.fill(`${form} [name=bucket_uri]`, `s3://${args.bucket}`);
  await page.fill(`${form} [name=role_arn]`, args.wrong_role);
  await page.fill(`${form} [name=expected_bucket_owner]`, args.owner);
  await page.fill(`${form} [name=interval]`, "");
  await page.click(`${form} button`);
  const failed = page.locator('#probe li.step.fail[data-step="credentials"]');
  await failed.waitFor(wait);
  const text = await failed.textContent();
  if (!/external_id does not match/.test(text)) fail(`the failing step does not name the cause: ${text}`);
  // Only the form, the message and the steps: a smaller picture.
  const top = (await page.locator(form).boundingBox()).y - 8;
  const probe = await page.locator("#probe").boundingBox();
  await page.screenshot({
    path: `${args.screenshots}/console-probe-failure.png`,
    clip: { x: 0, y: top, width: 1100, height: probe.y + probe.height + 8 - top },
  });
  console.log("console: a wrong ExternalId shows the failing credentials step");

  // A tenant's token: none of the operator's connectors, its own ExternalId in the set-up.
  await page.click("#logout");
  await page.locator("#login").waitFor(wait);
  await page.fill("#token", args.tenant_token);
  const listed = page.waitForResponse((r) => r.url().endsWith("/api/v1/connectors"));
  await page.click("#login-form button");
  await listed;
  const seen = await page.locator("#connectors tbody tr").count();
  if (seen !== 0) fail(`a tenant's token lists ${seen} connector(s) of the operator`);
  await page.click("#nav-connect");
  await page.locator("#setup-external-id", { hasText: args.tenant_external_id }).waitFor(wait);
  console.log("console: a tenant's token sees none of the operator's connectors and its own ExternalId");

  if (problems.length > 0) fail(`console errors or outside requests:\n${problems.join("\n")}`);
  console.log("console: no console errors");
} finally {
  await browser.close();
}
