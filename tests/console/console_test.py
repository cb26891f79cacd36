"""The web console (/console) in a real headless Chromium, driven through chromedriver by Selenium.

Run by tests/console/run, which starts the origin and an edge, mints the tokens and passes them
here; it can also be run by hand against any stack:

    console_test.py --base URL --origin URL --tenant UUID --token JWT --token2 JWT \
        --operator-token SECRET --chromium PATH --chromedriver PATH [--screenshots DIR]

Follows the console's DOM contract (ids, classes and data-* attributes; see issue 16). Each check
prints `ok    <what>` or `FAIL  <what>: <why>`, the last line `N passed, N failed` (with
`, N skipped` when checks were skipped because one they depend on failed); the exit status is 1
when anything failed. A screenshot of every page lands in --screenshots, and one of the page as
it was at each failure (fail-NN-<check>.png).

Both browser binaries are named (Service's executable_path, options.binary_location), so Selenium
Manager is never run: it would try to download a browser and a driver, and SE_MANAGER_PATH points
it at /bin/false to make sure it fails rather than fetch anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

os.environ["SE_MANAGER_PATH"] = "/bin/false"

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT = 30  # seconds for anything the page does
TASK_WAIT = 90  # a whole task: retrieval, answer, events
WIDE = (1280, 900)
NARROW = (390, 844)
FIRST_LOAD_LIMIT = 100 * 1024  # bytes: the console's HTML, JS and CSS on a first visit
SEARCH_QUERY = "how is each tenant kept apart by row-level security"
TASK_QUESTION = "How does agentplane keep one tenant from seeing another tenant's documents?"


class Skip(Exception):
    """A check that cannot run because one it depends on failed."""


def skip(why: str) -> Callable[[], None]:
    """A check function that only skips."""

    def fn() -> None:
        raise Skip(why)

    return fn


class Suite:
    def __init__(self, screenshots: Path) -> None:
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.screenshots = screenshots
        self.driver: webdriver.Chrome | None = None

    def check(self, what: str, fn: Callable[[], str | None]) -> bool:
        """Runs one check: fn raises on failure, may return a detail to print after `what`."""
        try:
            detail = fn()
        except Skip as e:
            print(f"skip  {what}: {e}", flush=True)
            self.skipped += 1
            return False
        except Exception as e:  # noqa: BLE001: any failure is this check's, and the suite goes on
            print(f"FAIL  {what}: {reason(e)}", flush=True)
            if os.environ.get("CONSOLE_TEST_TRACEBACKS"):
                traceback.print_exc()
            self.failed += 1
            self.shot_failure(what)
            return False
        print(f"ok    {what}" + (f" ({detail})" if detail else ""), flush=True)
        self.passed += 1
        return True

    def shot_failure(self, what: str) -> None:
        if self.driver is None:
            return
        slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")[:50]
        try:
            self.driver.save_screenshot(str(self.screenshots / f"fail-{self.failed:02d}-{slug}.png"))
        except WebDriverException:
            pass

    def summary(self) -> int:
        line = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            line += f", {self.skipped} skipped"
        print(line, flush=True)
        return 1 if self.failed or self.passed == 0 else 0


def reason(e: Exception) -> str:
    if isinstance(e, TimeoutException):
        return f"timed out: {e.msg or 'no message'}"
    if isinstance(e, WebDriverException):
        return (e.msg or type(e).__name__).splitlines()[0]
    text = str(e) or type(e).__name__
    return text if len(text) < 400 else text[:400] + "..."


# ---------------------------------------------------------------------------------------------
# The browser


def make_driver(
    chromium: str, chromedriver: str, size: tuple[int, int], log: Path | None, phone: bool = False
) -> webdriver.Chrome:
    """A headless Chromium with a window of `size`; with `phone`, a viewport of exactly `size`
    (a mobile one: a window cannot be narrower than about 500 px)."""
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    if phone:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": {"width": size[0], "height": size[1], "pixelRatio": 2}}
        )
    for arg in (
        "--headless=new",
        f"--window-size={max(size[0], 500)},{size[1]}",
        # /dev/shm is often small in containers (64 MB in Docker's default), and Chromium then
        # crashes on large pages: keep shared memory in /tmp instead.
        "--disable-dev-shm-usage",
        # Nothing leaves the machine: no component updates, sync, safe-browsing lists, proxies.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--no-proxy-server",
        "--password-store=basic",
        "--use-mock-keychain",
        # As root Chromium needs --no-sandbox: the wrapper (install_chromium) adds it.
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(log) if log else os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


def wait(driver, what: str, cond: Callable, timeout: float = WAIT):
    """WebDriverWait with a message saying what never happened. An element replaced while the
    condition looked at it (the page re-rendered) counts as not yet."""
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(cond, message=what)


def css(driver, selector: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, selector)


def csss(driver, selector: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def visible(selector: str):
    """A wait condition: the element exists and is displayed; the element."""

    def cond(d):
        els = csss(d, selector)
        return els[0] if els and els[0].is_displayed() else False

    return cond


def has_text(selector: str, pattern: str | None = None):
    """A wait condition: the element's text is non-empty (or matches pattern); the text."""

    def cond(d):
        els = csss(d, selector)
        if not els:
            return False
        text = els[0].text.strip()  # rendered text only: a hidden element has none
        if not text:
            return False
        if pattern is not None and not re.search(pattern, text, re.I):
            return False
        return text

    return cond


def attr_is(selector: str, name: str, value: str):
    def cond(d):
        els = csss(d, selector)
        return els[0] if els and els[0].get_attribute(name) == value else False

    return cond


def set_value(driver, el: WebElement, value) -> None:
    """Sets an input's value as a user would (range sliders included), firing input and change."""
    driver.execute_script(
        """
        const [el, value] = arguments;
        const proto = Object.getPrototypeOf(el);
        Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);
        el.dispatchEvent(new Event('input', {bubbles: true}));
        el.dispatchEvent(new Event('change', {bubbles: true}));
        """,
        el,
        str(value),
    )


def type_into(el: WebElement, text: str) -> None:
    el.clear()
    el.send_keys(text)


def go(driver, hash_route: str, page: str) -> WebElement:
    """Opens a page by its hash and waits until its section is shown and has loaded its data."""
    # The attribute is reset while a page loads; clearing it first means the wait below sees this
    # load's completion, not a previous one's. Already at that hash, nothing reloads: the page
    # stays as it is.
    driver.execute_script(
        """
        const [route, page] = arguments;
        if (location.hash === route) return;
        document.querySelector(page)?.removeAttribute('data-ready');
        location.hash = route;
        """,
        hash_route,
        page,
    )
    wait(driver, f"{page} shown", visible(page))
    return wait(driver, f"{page}[data-ready=true]", attr_is(page, "data-ready", "true"))


def screenshot(driver, directory: Path, name: str) -> None:
    driver.save_screenshot(str(directory / name))


# ---------------------------------------------------------------------------------------------
# The flows, one function each; they share the tenant's signed-in browser


class Console:
    def __init__(self, suite: Suite, driver: webdriver.Chrome, args: argparse.Namespace) -> None:
        self.s = suite
        self.d = driver
        self.a = args
        self.base = args.base.rstrip("/")
        self.origin = args.origin.rstrip("/")
        self.shots = Path(args.screenshots)
        self.loaded = False
        self.signed_in = False

    def need_page(self) -> None:
        if not self.loaded:
            raise Skip("the console did not load")

    def need_session(self) -> None:
        if not self.signed_in:
            raise Skip("not signed in")

    def search(self, query: str, **sliders) -> list[WebElement]:
        """Runs a search from the search page; the hits."""
        d = self.d
        go(d, "#/search", "#page-search")
        type_into(css(d, "#search-query"), query)
        for field, value in sliders.items():
            set_value(d, css(d, f"#{field}"), value)
        d.execute_script("document.querySelector('#search-results')?.removeAttribute('data-ready')")
        css(d, "#search-run").click()
        wait(d, "#search-results[data-ready=true] after the search", attr_is("#search-results", "data-ready", "true"))
        return csss(d, "#search-results li.hit")

    # --- first load and session

    def first_load(self) -> None:
        d = self.d

        def load():
            d.get(f"{self.base}/console")
            wait(d, "document complete", lambda d: d.execute_script("return document.readyState") == "complete")
            wait(d, "form#sign-in-form shown", visible("form#sign-in-form"))
            self.loaded = True
            screenshot(d, self.shots, "sign-in.png")
            return d.title or None

        self.s.check("the console loads signed out (form#sign-in-form)", load)

        def size():
            self.need_page()
            # Everything the first visit fetched for the page itself (the document, scripts,
            # styles, fonts, images), not the API calls its script made.
            entries = d.execute_script(
                """
                const pick = e => ({name: e.name, type: e.initiatorType || 'navigation',
                                    transfer: e.transferSize, encoded: e.encodedBodySize,
                                    decoded: e.decodedBodySize});
                return performance.getEntriesByType('navigation').map(pick)
                    .concat(performance.getEntriesByType('resource').map(pick)
                    .filter(e => !['fetch', 'xmlhttprequest', 'beacon'].includes(e.type)));
                """
            )
            transfer = sum(e["transfer"] or e["encoded"] or 0 for e in entries)
            decoded = sum(e["decoded"] or 0 for e in entries)
            files = ", ".join(f"{e['name'].rsplit('/', 1)[-1] or '/'} {e['transfer'] or e['encoded']}" for e in entries)
            if transfer > FIRST_LOAD_LIMIT:
                raise AssertionError(f"{transfer} bytes transferred (limit {FIRST_LOAD_LIMIT}): {files}")
            return f"{transfer / 1024:.1f} KB transferred, {decoded / 1024:.1f} KB decoded, {len(entries)} files: {files}"

        self.s.check(f"first load of /console under {FIRST_LOAD_LIMIT // 1024} KB", size)

    def sign_in(self) -> None:
        d, tenant = self.d, self.a.tenant

        def garbage():
            self.need_page()
            type_into(css(d, "textarea#token"), "not.a.token")
            css(d, "button#sign-in").click()
            text = wait(d, "#sign-in-error shows text", has_text("#sign-in-error"))
            if d.execute_script("return document.body.dataset.signedIn") == "true":
                raise AssertionError("body[data-signed-in=true] after a refused token")
            return repr(text)

        self.s.check("a garbage token is refused (#sign-in-error)", garbage)

        def real():
            self.need_page()
            type_into(css(d, "textarea#token"), self.a.token)
            css(d, "button#sign-in").click()
            wait(d, "body[data-signed-in=true]", attr_is("body", "data-signed-in", "true"))
            self.signed_in = True
            text = wait(d, f"#whoami contains {tenant}", has_text("#whoami", re.escape(tenant)))
            return repr(text)

        self.s.check("sign-in with the tenant's token (body[data-signed-in], #whoami)", real)

        def cookie():
            self.need_session()
            cookies = {c["name"]: c for c in d.get_cookies()}
            c = cookies.get("agentplane_session")
            if c is None:
                raise AssertionError(f"no agentplane_session cookie (have {sorted(cookies)})")
            problems = []
            if not c.get("httpOnly"):
                problems.append("not HttpOnly")
            if c.get("sameSite") != "Strict":
                problems.append(f"SameSite={c.get('sameSite')}")
            if "agentplane_session" in d.execute_script("return document.cookie"):
                problems.append("visible in document.cookie")
            if problems:
                raise AssertionError(", ".join(problems))
            return f"path {c.get('path')}, expires {c.get('expiry', 'with the browser')}"

        self.s.check("the session cookie is HttpOnly and SameSite=Strict", cookie)

        def storage():
            self.need_session()
            got = d.execute_script(
                "return {local: Object.keys(localStorage), session: Object.keys(sessionStorage)}"
            )
            if got["local"] or got["session"]:
                raise AssertionError(f"localStorage {got['local']}, sessionStorage {got['session']}")

        self.s.check("nothing in localStorage or sessionStorage", storage)

    # --- search

    def search_flow(self) -> None:
        d = self.d

        def run():
            self.need_session()
            hits = self.search(
                SEARCH_QUERY, **{"bm25-weight": 1.2, "vector-weight": 0.8, "rrf-k": 40, "search-limit": 5}
            )
            if not hits:
                raise AssertionError("no li.hit")
            ranks = [h.find_element(By.CSS_SELECTOR, ".hit-ranks").text.strip() for h in hits]
            if not all(ranks):
                raise AssertionError(f"an empty .hit-ranks: {ranks}")
            marks = csss(d, "#search-results .hit-snippet mark")
            if not marks:
                raise AssertionError("no <mark> in any .hit-snippet")
            values = d.execute_script(
                "return ['bm25-weight', 'vector-weight', 'rrf-k'].map(i => document.getElementById(i).value)"
            )
            if [float(v) for v in values] != [1.2, 0.8, 40]:
                raise AssertionError(f"the sliders read {values} after the search")
            mode = css(d, "#search-mode").text.strip()
            # The demo origin has its embedding model: both rankings ran.
            if not mode.startswith("hybrid"):
                raise AssertionError(f"#search-mode reads {mode!r}, not hybrid")
            screenshot(d, self.shots, "search.png")
            return f"{len(hits)} hits, mode {mode!r}, first {ranks[0]!r}, marks {[m.text for m in marks[:4]]}"

        self.s.check("search: hits with ranks and highlighted terms", run)

    # --- usage

    def usage_calls(self) -> tuple[int, int]:
        """Opens the usage page afresh; (data-calls, number of bars)."""
        d = self.d
        d.execute_script("location.hash = '#/usage'")
        d.refresh()
        wait(d, "#page-usage shown", visible("#page-usage"))
        wait(d, "#page-usage[data-ready=true]", attr_is("#page-usage", "data-ready", "true"))
        chart = wait(d, "svg#usage-chart[data-calls]", lambda d: (csss(d, "#usage-chart") or [None])[0])
        calls = chart.get_attribute("data-calls")
        if calls is None or not calls.strip().isdigit():
            raise AssertionError(f"#usage-chart data-calls is {calls!r}")
        return int(calls), len(csss(d, "#usage-chart rect.bar"))

    def usage_flow(self) -> None:
        d = self.d

        def run():
            self.need_session()
            before, _ = self.usage_calls()
            # A query never asked before, so its embedding is computed (and counted), not cached.
            self.search(f"how do zebra stripes {uuid.uuid4().hex} confuse biting flies")
            deadline = time.monotonic() + WAIT
            while True:
                after, bars = self.usage_calls()
                if after > before:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"data-calls stayed {before} -> {after}")
                time.sleep(1)
            if bars == 0:
                raise AssertionError("no rect.bar in #usage-chart")
            screenshot(d, self.shots, "usage.png")
            return f"calls {before} -> {after}, {bars} bars, tokens {css(d, '#usage-chart').get_attribute('data-tokens')}"

        self.s.check("usage: a new query's embedding shows in #usage-chart data-calls", run)

    # --- documents

    def documents_flow(self) -> None:
        d = self.d
        word = f"quokka{uuid.uuid4().hex[:12]}"
        title = f"Console upload {word}"
        state: dict[str, str] = {}

        def upload():
            self.need_session()
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"console-{word}.md"
                path.write_text(
                    f"# {title}\n\nA note uploaded by the console's browser test. The {word} is a "
                    "small marsupial that lives on Rottnest Island and smiles for photographs.\n"
                )
                go(d, "#/documents", "#page-documents")
                css(d, "input#doc-files").send_keys(str(path))
                css(d, "button#doc-upload").click()
                wait(d, "#upload-status[data-done=true]", attr_is("#upload-status", "data-done", "true"))
            status = css(d, "#upload-status").text.strip()
            if not status.endswith("uploaded 1 of 1"):
                raise AssertionError(f"#upload-status reads {status!r}")
            state["uploaded"] = "yes"
            return repr(status)

        self.s.check("documents: a Markdown file uploads (#upload-status data-done)", upload)

        def need_upload():
            self.need_session()
            if "uploaded" not in state:
                raise Skip("the upload failed")

        def found():
            need_upload()
            titles = [h.find_element(By.CSS_SELECTOR, ".hit-title").text.strip() for h in self.search(word)]
            if title not in titles:
                raise AssertionError(f"{title!r} not among the hits {titles}")
            return f"hit {titles.index(title) + 1} of {len(titles)}"

        self.s.check("documents: the upload is found by its unique word", found)

        def listed():
            need_upload()
            go(d, "#/documents", "#page-documents")
            type_into(css(d, "input#doc-filter"), word)

            def shown_id(d):
                """The data-id of the row titled `title`, once the (re-rendered) table shows it."""
                for r in csss(d, "#doc-table tr.doc-row"):
                    if r.is_displayed() and title in r.find_element(By.CSS_SELECTOR, ".doc-title").text:
                        return r.get_attribute("data-id") or "?"
                return False

            # The filter is the server's (list_documents' title_contains): the table narrows to
            # the one document whose title holds the unique word.
            def narrowed(d):
                rows = [r for r in csss(d, "#doc-table tr.doc-row") if r.is_displayed()]
                return len(rows) == 1 and shown_id(d)

            state["id"] = wait(d, f"#doc-table filtered down to {title!r}", narrowed, 15)
            row = css(d, f"#doc-table tr.doc-row[data-id='{state['id']}']")
            embedding = row.find_element(By.CSS_SELECTOR, ".doc-embedding").text.strip()
            backlog = css(d, "#embedding-backlog").text.strip()
            screenshot(d, self.shots, "documents.png")
            return f"id {state['id']}, {embedding}, backlog {backlog!r}"

        self.s.check("documents: the title filter narrows the list to the upload", listed)

        def opened():
            need_upload()
            if not state.get("id"):
                raise Skip("the document was not listed")
            row = f"#doc-table tr.doc-row[data-id='{state['id']}']"
            # .doc-title is the link, or holds it.
            link = wait(
                d, f"{row} a.doc-title", lambda d: (csss(d, f"{row} a.doc-title") or csss(d, f"{row} .doc-title a"))[:1]
            )[0]
            d.execute_script("document.querySelector('#page-document')?.removeAttribute('data-ready')")
            link.click()
            wait(d, "#page-document shown", visible("#page-document"))
            wait(d, "#page-document[data-ready=true]", attr_is("#page-document", "data-ready", "true"))
            if state["id"] not in d.current_url:
                raise AssertionError(f"at {d.current_url}, not #/documents/{state['id']}")
            shown = css(d, "#doc-view-title").text.strip()
            if shown != title:
                raise AssertionError(f"#doc-view-title is {shown!r}")
            content = css(d, "#doc-view-content").text
            if "Rottnest Island" not in content:
                raise AssertionError(f"#doc-view-content is {content[:200]!r}")
            screenshot(d, self.shots, "document.png")

        self.s.check("documents: the upload opens with its content", opened)

    # --- tasks

    def tasks_flow(self) -> None:
        d = self.d
        state: dict[str, str] = {}

        def run():
            self.need_session()
            go(d, "#/tasks", "#page-tasks")
            Select(css(d, "select#task-kind")).select_by_value("rag_answer")
            type_into(css(d, "textarea#task-input"), TASK_QUESTION)
            css(d, "button#task-start").click()
            url = wait(d, "the page moves to #/tasks/<id>", lambda d: re.search(r"#/tasks/([^/?#]+)$", d.current_url))
            state["id"] = url.group(1)
            wait(d, "#page-task shown", visible("#page-task"))
            wait(d, "three li.task-event", lambda d: len(csss(d, "#task-events li.task-event")) >= 3, TASK_WAIT)
            wait(d, "#page-task[data-final=true]", attr_is("#page-task", "data-final", "true"), TASK_WAIT)
            task_state = css(d, "#task-state").text.strip()
            if task_state != "completed":
                raise AssertionError(f"#task-state is {task_state!r}")
            shown_id = css(d, "#task-id").text.strip()
            if state["id"] not in shown_id:
                raise AssertionError(f"#task-id is {shown_id!r}, the URL says {state['id']}")
            answers = [a.text.strip() for a in csss(d, "#task-artifacts .artifact")]
            if not any(answers):
                raise AssertionError("no .artifact with text in #task-artifacts")
            citations = csss(d, "#task-artifacts a.citation")
            events = len(csss(d, "#task-events li.task-event"))
            screenshot(d, self.shots, "task.png")
            return f"task {state['id']}, {events} events, {len(citations)} citations, answer {answers[0][:60]!r}"

        self.s.check("tasks: rag_answer streams its events to completed with an answer", run)

        def listed():
            self.need_session()
            if "id" not in state:
                raise Skip("no task was started")
            go(d, "#/tasks", "#page-tasks")
            row = wait(d, f"tr.task-row[data-id={state['id']}]", visible(f"#task-table tr.task-row[data-id='{state['id']}']"))
            shown = row.find_element(By.CSS_SELECTOR, ".task-state").text.strip()
            screenshot(d, self.shots, "tasks.png")
            if shown != "completed":
                raise AssertionError(f".task-state is {shown!r}")

        self.s.check("tasks: the list shows the task completed", listed)

    # --- isolation

    def isolation_flow(self) -> None:
        d = self.d
        state: dict[str, str] = {}

        def other_tenant_task():
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "SendMessage",
                "params": {
                    "message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": "hello"}]},
                    "configuration": {"returnImmediately": True},
                },
            }
            answer = post_json(f"{self.base}/a2a", self.a.token2, body)
            if "error" in answer:
                raise AssertionError(f"SendMessage as the second tenant: {answer['error']}")
            state["id"] = answer["result"]["task"]["id"]
            return f"task {state['id']}"

        self.s.check("isolation: the second tenant starts a task over A2A (SendMessage 1.0)", other_tenant_task)

        def not_found():
            self.need_session()
            if "id" not in state:
                raise Skip("the second tenant has no task")
            d.get(f"{self.base}/console#/tasks/{state['id']}")
            text = wait(d, "#task-error says not found", has_text("#task-error", "not found"))
            answers = [a.text for a in csss(d, "#task-artifacts .artifact") if a.text.strip()]
            if answers:
                raise AssertionError(f"the other tenant's artifacts are shown: {answers}")
            return repr(text)

        self.s.check("isolation: the first tenant's console says the second's task is not found", not_found)

    # --- operator

    def operator_flow(self) -> None:
        d = self.d

        def refused():
            self.need_page()
            d.get(f"{self.origin}/console#/operator")
            wait(d, "input#operator-token shown", visible("input#operator-token"))
            type_into(css(d, "input#operator-token"), "not-the-operator-token")
            css(d, "button#operator-sign-in").click()
            return repr(wait(d, "#operator-error shows text", has_text("#operator-error")))

        self.s.check("operator: a wrong operator token is refused (#operator-error)", refused)

        def ready():
            self.need_page()
            if not csss(d, "input#operator-token"):
                d.get(f"{self.origin}/console#/operator")
            wait(d, "input#operator-token shown", visible("input#operator-token"))
            type_into(css(d, "input#operator-token"), self.a.operator_token)
            css(d, "button#operator-sign-in").click()
            wait(d, "#operator-details shown", visible("#operator-details"))
            status = wait(d, "#op-status reads ready", has_text("#op-status", r"^ready$"))
            tiers = len(csss(d, "#op-tiers tr"))
            tenants = len(csss(d, "#op-tenants tr"))
            screenshot(d, self.shots, "operator.png")
            return f"status {status!r}, {tiers} tier rows, {tenants} tenant rows"

        self.s.check("operator: at the origin, the operator token shows #op-status ready", ready)

    # --- sign-out

    def sign_out_flow(self) -> None:
        d = self.d

        def run():
            self.need_session()
            d.get(f"{self.base}/console#/search")
            wait(d, "body[data-signed-in=true]", attr_is("body", "data-signed-in", "true"))
            css(d, "button#sign-out").click()
            wait(d, "form#sign-in-form shown after sign-out", visible("form#sign-in-form"))
            d.refresh()
            wait(d, "form#sign-in-form shown after a reload", visible("form#sign-in-form"))
            if d.execute_script("return document.body.dataset.signedIn") == "true":
                raise AssertionError("body[data-signed-in=true] after sign-out and a reload")
            left = [c["name"] for c in d.get_cookies() if c["name"] == "agentplane_session" and c.get("value")]
            if left:
                raise AssertionError("the agentplane_session cookie is still set")

        self.s.check("sign-out clears the session (a reload shows the sign-in form)", run)

    # --- the browser console

    def script_errors(self) -> None:
        d = self.d

        def run():
            self.need_page()
            # Refused requests (the garbage token, the other tenant's task) are logged as failed
            # loads; those are expected. Anything else at SEVERE (an exception, a CSP violation)
            # is the console's fault.
            errors = [
                e["message"]
                for e in d.get_log("browser")
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
            ]
            if errors:
                raise AssertionError("; ".join(errors[:5]))

        self.s.check("no script errors in the browser's console", run)


def post_json(url: str, token: str, body: dict) -> dict:
    """A JSON-RPC call over plain HTTP (no proxy: everything here is on loopback)."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "A2A-Version": "1.0",
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=WAIT) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise AssertionError(f"HTTP {e.code}: {e.read()[:300]!r}") from e


# ---------------------------------------------------------------------------------------------
# The narrow window: a phone-sized viewport, signed in afresh


def narrow_run(suite: Suite, args: argparse.Namespace, log: Path | None, loaded: bool) -> None:
    what = f"search at {NARROW[0]}x{NARROW[1]}: hits, no sideways scrolling"
    if not loaded:
        suite.check(what, skip("the console did not load"))
        return
    driver = make_driver(args.chromium, args.chromedriver, NARROW, log, phone=True)
    suite.driver = driver
    try:
        c = Console(suite, driver, args)

        def run():
            driver.get(f"{c.base}/console")
            wait(driver, "form#sign-in-form shown", visible("form#sign-in-form"))
            type_into(css(driver, "textarea#token"), args.token)
            css(driver, "button#sign-in").click()
            wait(driver, "body[data-signed-in=true]", attr_is("body", "data-signed-in", "true"))
            hits = c.search(SEARCH_QUERY)
            if not hits:
                raise AssertionError("no li.hit")
            screenshot(driver, c.shots, "search-narrow.png")
            width, inner = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            if width > inner:
                raise AssertionError(f"the page is {width} px wide in a {inner} px window (scrolls sideways)")
            return f"{len(hits)} hits, {width} px wide in a {inner} px viewport"

        suite.check(what, run)
    finally:
        driver.quit()
        suite.driver = None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="where the console is used: the edge's URL")
    p.add_argument("--origin", required=True, help="the origin's own URL (the operator page)")
    p.add_argument("--tenant", required=True, help="the first token's tenant id")
    p.add_argument("--token", required=True, help="a token of --tenant (search:read docs:write tasks:run)")
    p.add_argument("--token2", required=True, help="a token of another tenant")
    p.add_argument("--operator-token", required=True)
    p.add_argument("--chromium", required=True, help="the browser (install_chromium's CHROMIUM_BIN)")
    p.add_argument("--chromedriver", required=True, help="its driver (CHROMEDRIVER_BIN)")
    p.add_argument("--screenshots", default="target/console-screenshots")
    p.add_argument("--driver-log", help="chromedriver's log file")
    args = p.parse_args()

    shots = Path(args.screenshots)
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    log = Path(args.driver_log) if args.driver_log else None
    suite = Suite(shots)

    started = time.monotonic()
    driver = make_driver(args.chromium, args.chromedriver, WIDE, log)
    suite.driver = driver
    print(f"# {driver.capabilities.get('browserVersion')} via chromedriver "
          f"{driver.capabilities.get('chrome', {}).get('chromedriverVersion', '?').split(' ')[0]}, "
          f"console at {args.base}/console", flush=True)
    try:
        c = Console(suite, driver, args)
        c.first_load()
        c.sign_in()
        c.search_flow()
        c.usage_flow()
        c.documents_flow()
        c.tasks_flow()
        c.isolation_flow()
        c.operator_flow()
        c.sign_out_flow()
        c.script_errors()
    finally:
        driver.quit()
        suite.driver = None
    narrow_run(suite, args, log, c.loaded)
    print(f"# {time.monotonic() - started:.1f}s; screenshots in {shots}", flush=True)
    return suite.summary()


if __name__ == "__main__":
    sys.exit(main())
