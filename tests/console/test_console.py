"""The console over real HTTP: sign-in, CSRF, and what each page shows of the recorded log."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

import httpx

from tests.console.conftest import ADMIN_TOKEN, ConsoleSite, csrf_of
from tests.e2e.workflows.conftest import POLICIES
from tests.replay.test_replay import NO_PASSWORD_RESETS, RESETS_MESSAGE

PAGES = ("/ui/policies", "/ui/decisions", "/ui/what-if", "/ui/explain")


def test_every_page_sends_a_signed_out_browser_to_sign_in(console_site: ConsoleSite) -> None:
    with console_site.client() as client:
        for page in PAGES:
            response = client.get(page)
            assert (response.status_code, response.headers["location"]) == (303, "/ui/login")


def test_signing_in_sets_an_httponly_samesite_strict_session_cookie(console_site: ConsoleSite) -> None:
    with console_site.client() as client:
        form = client.get("/ui/login")
        response = client.post("/ui/login", data={"token": ADMIN_TOKEN, "csrf": csrf_of(form.text)})
    assert response.status_code == 303
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith("mcpfence_console="))
    cookie = SimpleCookie(header)["mcpfence_console"]
    assert cookie["httponly"] and cookie["samesite"] == "strict" and cookie["path"] == "/ui"


def test_a_wrong_token_is_refused_on_the_form(console_site: ConsoleSite) -> None:
    with console_site.client() as client:
        form = client.get("/ui/login")
        response = client.post("/ui/login", data={"token": "guess", "csrf": csrf_of(form.text)})
    assert response.status_code == 401
    assert "That is not the admin token." in response.text
    assert "mcpfence_console=" not in response.headers.get("set-cookie", "")


def test_sign_in_without_the_forms_csrf_token_is_refused(console_site: ConsoleSite) -> None:
    with console_site.client() as client:
        client.get("/ui/login")
        response = client.post("/ui/login", data={"token": ADMIN_TOKEN, "csrf": "forged"})
    assert response.status_code == 403


def test_a_post_without_the_sessions_csrf_token_is_refused(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        response = client.post("/ui/explain", data={"route": "ipost", "tool": "x", "args": "{}"})
    assert response.status_code == 403
    assert "did not come from the console" in response.text


def test_a_forged_session_cookie_is_not_signed_in(console_site: ConsoleSite) -> None:
    with console_site.client() as client:
        client.cookies.set("mcpfence_console", "9999999999.nonce.deadbeef", path="/ui")
        assert client.get("/ui/policies").status_code == 303


def test_signing_out_ends_the_session(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        page = client.get("/ui/policies")
        response = client.post("/ui/logout", data={"csrf": csrf_of(page.text)})
        assert response.status_code == 303
        assert client.get("/ui/policies").status_code == 303


def test_nothing_of_the_console_is_served_on_the_proxy_port(console_site: ConsoleSite) -> None:
    for page in ("/ui/login", "/ui/policies", "/ui/static/console.css"):
        assert httpx.get(console_site.proxy + page).status_code == 404


def test_pages_forbid_scripts_and_framing(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        policy = client.get("/ui/policies").headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy


def test_policies_page_shows_every_loaded_policy_with_revision_rules_and_test_results(
    console_site: ConsoleSite,
) -> None:
    with console_site.signed_in() as client:
        page = client.get("/ui/policies").text
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        loaded = httpx.get(console_site.ui + "/admin/policies", headers=bearer)
    summary = loaded.json()
    assert summary["revision"] in page
    for name in summary["policies"]:
        assert f'id="{name}"' in page
    assert "Sets /GlobalEmailStatus to" in page  # a mutation in plain words
    assert "md5 emails are trimmed and lowercased" in page  # a PolicyTest case, with its result
    assert "FAIL" not in page
    assert "succeeded" in page  # last reload


def test_decisions_filter_by_decision_and_show_what_the_model_saw(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        page = client.get("/ui/decisions", params={"decision": "deny"}).text
    assert "<h2 id=\"results\">1 decision</h2>" in page
    assert "Blocked by policy ipost-no-silent-resubscribe: sending Email re-subscribes" in page


def test_decisions_filter_by_policy_and_draw_a_chart(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        page = client.get("/ui/decisions", params={"policy": "ipost-md5-emails-lowercase"}).text
    assert "<h2 id=\"results\">1 decision</h2>" in page
    assert "create_a_i_post_md_5_list_contact" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and "<polyline" in page


def test_decisions_filter_by_time(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        page = client.get("/ui/decisions", params={"since": "2999-01-01T00:00"}).text
    assert "<h2 id=\"results\">0 decisions</h2>" in page


def test_lines_appended_to_the_log_appear_with_a_link_to_their_trace(console_site: ConsoleSite) -> None:
    line = json.loads(console_site.log.read_text().splitlines()[0])
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    line.update(decision_id="appended-1", trace_id=trace_id, client_id="auditor-bot")
    with console_site.log.open("a") as log:
        log.write(json.dumps(line) + "\n")
    with console_site.signed_in() as client:
        page = client.get("/ui/decisions", params={"client": "auditor-bot"}).text
    assert "<h2 id=\"results\">1 decision</h2>" in page
    assert 'href="http://jaeger.example/trace/4bf92f3577b34da6a3ce929d0e0e4736"' in page


def test_what_if_shows_the_replay_diff_of_a_candidate_that_blocks_a_recorded_call(
    console_site: ConsoleSite,
) -> None:
    with console_site.signed_in() as client:
        form = client.get("/ui/what-if")
        page = client.post("/ui/what-if", data={"csrf": csrf_of(form.text), "text": NO_PASSWORD_RESETS}).text
    assert "recorded calls replayed: 1 would be decided differently." in page
    assert "<td>no-password-resets</td><td>allow-&gt;deny</td><td>1</td>" in page
    assert f"no-password-resets: {RESETS_MESSAGE}" in page


def test_what_if_reports_load_errors_with_line_numbers(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        form = client.get("/ui/what-if")
        files = {"file": ("strict.yaml", NO_PASSWORD_RESETS.replace("!=", "!=="), "application/yaml")}
        page = client.post("/ui/what-if", data={"csrf": csrf_of(form.text)}, files=files).text
    assert "strict.yaml:9:40: spec.validations.0.expression: Syntax error" in page


def test_what_if_replacing_a_pack_shows_what_its_removal_would_let_through(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        form = client.get("/ui/what-if")
        data = {"csrf": csrf_of(form.text), "text": "", "replaces": str((POLICIES / "ipost.yaml").resolve())}
        page = client.post("/ui/what-if", data=data).text
    assert "<td>ipost-no-silent-resubscribe</td><td>deny-&gt;allow</td><td>1</td>" in page


def test_explain_shows_the_decision_final_arguments_and_each_policys_verdict(
    console_site: ConsoleSite,
) -> None:
    args = {"list_id": "401", "emails": ["Ann@X.example "]}
    with console_site.signed_in() as client:
        form = client.get("/ui/explain")
        data = {"csrf": csrf_of(form.text), "route": "ipost", "tool": "create_a_i_post_md_5_list_contact",
                "args": json.dumps(args)}
        page = client.post("/ui/explain", data=data).text
    assert '<span class="tag mutate">mutate</span>' in page
    assert "<tr><td>ipost-md5-emails-lowercase</td><td>mutated</td></tr>" in page
    assert "ann@x.example" in page


def test_explain_points_at_bad_json(console_site: ConsoleSite) -> None:
    with console_site.signed_in() as client:
        form = client.get("/ui/explain")
        data = {"csrf": csrf_of(form.text), "route": "ipost", "tool": "t", "args": '{"id": }'}
        response = client.post("/ui/explain", data=data)
    assert response.status_code == 400
    assert "Arguments are not JSON: Expecting value (line 1, column 8)." in response.text
