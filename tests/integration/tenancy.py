"""Tenant isolation and role matrix checks, shared by every issue's tests.

Every tenant-scoped route is listed once here; later issues extend the
lists (append in their own test module before calling, or better, add a
line here next to their resource):

    TENANT_ROUTES  (method, path with {name} placeholders, body or None)
    RESOURCE_MAKERS  functions (srv, tenant) -> {name: id} that create
                     tenant A's resources and name their ids
    SNAPSHOTS      {name: GET path}: how A reads its resource back, to prove
                   B's attempts changed nothing
    ROLE_ROUTES    (method, path, body, least role) of API.md's role table

check_cross_tenant(tc, srv, a, b) calls every TENANT_ROUTES entry as B's
org_admin with A's ids and demands 404 not_found with no A data in the
answer, then checks A's resources are unchanged. check_role_matrix(tc,
srv, tenant, su_token, ids) demands 403 forbidden exactly where API.md's
table says no, and anything but 401/403 where it says yes.

Tenants come from harness.make_tenant (users org_admin/agent/viewer).

test_users.py holds the lists to the server's route table (`pytake
routes`): every /api/v1 route with an id in its path must be in
TENANT_ROUTES (or NOT_TENANT_SCOPED, with the reason), and every
authenticated /api/v1 route in ROLE_ROUTES with the least role the route
table names. A new route without a line here fails that test.
"""

from harness import bearer

ROLE_ORDER = {"viewer": 1, "agent": 2, "org_admin": 3, "super_admin": 4}

TENANT_ROUTES = [
    ("GET", "/api/v1/users/{user_id}", None),
    ("PATCH", "/api/v1/users/{user_id}", {"full_name": "Taken Over", "role": "viewer"}),
    ("PATCH", "/api/v1/users/{user_id}", {"is_active": False}),
    ("PATCH", "/api/v1/users/{user_id}", {"password": "hijacked-password"}),
    ("DELETE", "/api/v1/users/{user_id}", None),
    ("GET", "/api/v1/whatsapp-numbers/{number_id}", None),
    ("PATCH", "/api/v1/whatsapp-numbers/{number_id}",
     {"display_phone_number": "+1 555 000 6666", "throughput_mps": 1,
      "access_token": "HIJACKED-TOKEN", "app_secret": None}),
    ("DELETE", "/api/v1/whatsapp-numbers/{number_id}", None),
    # templates (the whatsapp_number_id of POST /templates and /sync bodies is
    # a body field: test_templates.py checks it answers 422 alike)
    ("GET", "/api/v1/templates/{template_id}", None),
    ("PATCH", "/api/v1/templates/{template_id}", {"category": "MARKETING"}),
    ("DELETE", "/api/v1/templates/{template_id}", None),
    ("POST", "/api/v1/templates/{template_id}/submit", None),
    ("POST", "/api/v1/templates/{template_id}/preview", {"parameters": []}),
    # conversations and messages (whatsapp_number_id / template_id of POST
    # /messages are body fields: test_messages.py checks they answer 422)
    ("GET", "/api/v1/conversations/{conversation_id}", None),
    ("GET", "/api/v1/conversations/{conversation_id}/messages", None),
    ("POST", "/api/v1/conversations/{conversation_id}/assign", {"user_id": None}),
    ("POST", "/api/v1/conversations/{conversation_id}/close", None),
    ("GET", "/api/v1/messages/{message_id}", None),
    # contacts
    ("GET", "/api/v1/contacts/{contact_id}", None),
    ("PATCH", "/api/v1/contacts/{contact_id}", {"name": "Taken Over", "tags": ["x"]}),
    ("PATCH", "/api/v1/contacts/{contact_id}", {"phone": "+1 415 555 0000"}),
    ("DELETE", "/api/v1/contacts/{contact_id}", None),
    ("POST", "/api/v1/contacts/{contact_id}/opt-out", None),
    ("POST", "/api/v1/contacts/{opted_out_contact_id}/opt-in", None),
    # campaigns
    ("GET", "/api/v1/campaigns/{campaign_id}", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/estimate", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/start", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/pause", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/resume", None),
    ("POST", "/api/v1/campaigns/{campaign_id}/cancel", None),
    ("GET", "/api/v1/campaigns/{campaign_id}/recipients", None),
]

# Routes with an id in the path that are not tenant-scoped, and why
# (test_users.py checks every other one is in TENANT_ROUTES).
NOT_TENANT_SCOPED = {
    ("GET", "/api/v1/organizations/{id}"): "super_admin reads any organization",
}


def _user_ids(srv, tenant):
    return {"user_id": tenant["users"]["agent"]["id"]}


_number_seq = [0]


def make_number(srv, tenant, **fields):
    """POST /api/v1/whatsapp-numbers as the tenant's org_admin with a
    phone_number_id unique in this process; returns the answer's JSON."""
    import os
    _number_seq[0] += 1
    body = {"phone_number_id": "%d%04d" % (os.getpid(), _number_seq[0]),
            "waba_id": "7700%d" % os.getpid(), "display_phone_number": "+1 555 010 %04d" % _number_seq[0],
            "access_token": "tenancy-token-%d" % _number_seq[0]}
    body.update(fields)
    r = srv.request("POST", "/api/v1/whatsapp-numbers", body,
                    headers=bearer(tenant["users"]["org_admin"]["token"]))
    if r.status != 201:
        raise AssertionError("create number: %r" % (r,))
    return r.json()


def _number_ids(srv, tenant):
    return {"number_id": make_number(srv, tenant)["id"],
            "victim_number_id": make_number(srv, tenant)["id"]}


_template_seq = [0]


def make_template(srv, tenant, number_id, **fields):
    """POST /api/v1/templates (a valid DRAFT UTILITY template with one body
    text, name unique in this process) as the tenant's org_admin; returns
    the answer's JSON."""
    _template_seq[0] += 1
    body = {"whatsapp_number_id": number_id, "name": "tenancy_tpl_%d" % _template_seq[0],
            "language": "en_US", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Your order has shipped."}]}
    body.update(fields)
    r = srv.request("POST", "/api/v1/templates", body,
                    headers=bearer(tenant["users"]["org_admin"]["token"]))
    if r.status != 201:
        raise AssertionError("create template: %r" % (r,))
    return r.json()


def _template_ids(srv, tenant):
    """template_id / victim_template_id: DRAFT templates; gone_template_id:
    a DRAFT template whose number was deleted, so submitting it stops at
    409 before any call to Meta (role matrix without a Graph server)."""
    number = make_number(srv, tenant)["id"]
    gone_number = make_number(srv, tenant)["id"]
    ids = {"template_id": make_template(srv, tenant, number)["id"],
           "victim_template_id": make_template(srv, tenant, number)["id"],
           "gone_template_id": make_template(srv, tenant, gone_number)["id"]}
    r = srv.request("DELETE", "/api/v1/whatsapp-numbers/" + gone_number,
                    headers=bearer(tenant["users"]["org_admin"]["token"]))
    if r.status != 204:
        raise AssertionError("delete number: %r" % (r,))
    return ids


def _conversation_ids(srv, tenant):
    """conversation_id / message_id: an open conversation (with unread
    inbound message) of a new number, written straight into the database
    so no webhook secret or Graph server is needed."""
    import time
    import uuid
    number = make_number(srv, tenant)["id"]
    org = tenant["org_id"]
    contact, conv, msg = (str(uuid.uuid4()) for _ in range(3))
    now = int(time.time() * 1e6)
    wa_id = "5511%09d" % (now % 1000000000)
    srv.sql("INSERT INTO contacts (id, organization_id, wa_id, name, created_at, updated_at) "
            "VALUES ('%s', '%s', '%s', 'Tenancy Contact', %d, %d)" % (contact, org, wa_id, now, now))
    srv.sql("INSERT INTO conversations (id, organization_id, contact_id, whatsapp_number_id, "
            "status, last_message_at, last_inbound_at, window_expires_at, unread_count, "
            "created_at, updated_at) VALUES ('%s', '%s', '%s', '%s', 'open', %d, %d, %d, 1, %d, %d)"
            % (conv, org, contact, number, now, now, now + 86400 * 10**6, now, now))
    srv.sql("INSERT INTO messages (id, organization_id, conversation_id, whatsapp_number_id, "
            "contact_id, direction, type, text, status, wamid, created_at) VALUES "
            "('%s', '%s', '%s', '%s', '%s', 'inbound', 'text', 'hi', 'received', 'wamid.T%s', %d)"
            % (msg, org, conv, number, contact, msg, now))
    return {"conversation_id": conv, "message_id": msg}


_contact_seq = [0]


def make_contact(srv, tenant, **fields):
    """POST /api/v1/contacts (a phone unique in this process) as the
    tenant's agent; returns the answer's JSON."""
    import os
    _contact_seq[0] += 1
    body = {"phone": "+1 415 %03d %04d" % (os.getpid() % 1000, _contact_seq[0]),
            "name": "Tenancy Contact %d" % _contact_seq[0], "tags": ["tenancy"]}
    body.update(fields)
    r = srv.request("POST", "/api/v1/contacts", body,
                    headers=bearer(tenant["users"]["agent"]["token"]))
    if r.status != 201:
        raise AssertionError("create contact: %r" % (r,))
    return r.json()


def _contact_ids(srv, tenant):
    return {"contact_id": make_contact(srv, tenant)["id"],
            "victim_contact_id": make_contact(srv, tenant)["id"],
            "opted_out_contact_id": make_contact(srv, tenant, opted_in=False)["id"]}


def _campaign_ids(srv, tenant):
    """campaign_id: a draft campaign; ended_campaign_id: a cancelled one
    (start/pause/resume/cancel answer 409 to a role that may act, so the
    role matrix starts nothing). Written straight into the database so no
    rate card, audience or approved template is needed."""
    import time
    import uuid
    number = make_number(srv, tenant)["id"]
    template = make_template(srv, tenant, number)["id"]
    now = int(time.time() * 1e6)
    ids = {}
    for name, status in (("campaign_id", "draft"), ("ended_campaign_id", "cancelled")):
        ids[name] = str(uuid.uuid4())
        srv.sql("INSERT INTO campaigns (id, organization_id, name, whatsapp_number_id, template_id, "
                "audience, status, created_at, updated_at) VALUES ('%s', '%s', 'Tenancy %s', '%s', "
                "'%s', '{\"tags\": [\"nobody\"]}', '%s', %d, %d)"
                % (ids[name], tenant["org_id"], status, number, template, status, now, now))
    return ids


RESOURCE_MAKERS = [_user_ids, _number_ids, _template_ids, _conversation_ids, _contact_ids,
                   _campaign_ids]

SNAPSHOTS = {
    "user_id": "/api/v1/users/{user_id}",
    "number_id": "/api/v1/whatsapp-numbers/{number_id}",
    "template_id": "/api/v1/templates/{template_id}",
    "conversation_id": "/api/v1/conversations/{conversation_id}",
    "message_id": "/api/v1/messages/{message_id}",
    "contact_id": "/api/v1/contacts/{contact_id}",
    "opted_out_contact_id": "/api/v1/contacts/{opted_out_contact_id}",
    "campaign_id": "/api/v1/campaigns/{campaign_id}",
}

# Bodies of writes are chosen so an allowed call does no harm ({} -> 422 on
# creates); {victim_id} is a user that may be deactivated.
ROLE_ROUTES = [
    ("GET", "/api/v1/organizations/me", None, "viewer"),
    ("PATCH", "/api/v1/organizations/me", {}, "org_admin"),
    ("GET", "/api/v1/organizations", None, "super_admin"),
    ("POST", "/api/v1/organizations", {}, "super_admin"),
    ("GET", "/api/v1/users", None, "org_admin"),
    ("POST", "/api/v1/users", {}, "org_admin"),
    ("GET", "/api/v1/users/{user_id}", None, "org_admin"),
    ("PATCH", "/api/v1/users/{user_id}", {}, "org_admin"),
    ("DELETE", "/api/v1/users/{victim_id}", None, "org_admin"),
    ("GET", "/api/v1/audit-logs", None, "org_admin"),
    ("GET", "/api/v1/auth/me", None, "viewer"),
    # WhatsApp numbers: reads for every role (senders for the inbox), writes org_admin
    ("GET", "/api/v1/whatsapp-numbers", None, "viewer"),
    ("POST", "/api/v1/whatsapp-numbers", {}, "org_admin"),
    ("GET", "/api/v1/whatsapp-numbers/{number_id}", None, "viewer"),
    ("PATCH", "/api/v1/whatsapp-numbers/{number_id}", {}, "org_admin"),
    ("DELETE", "/api/v1/whatsapp-numbers/{victim_number_id}", None, "org_admin"),
    # templates: reads (and preview) for every role, writes org_admin; no
    # allowed call here reaches Meta (sync {} is 422, gone_template_id 409)
    ("GET", "/api/v1/templates", None, "viewer"),
    ("POST", "/api/v1/templates", {}, "org_admin"),
    ("GET", "/api/v1/templates/{template_id}", None, "viewer"),
    ("PATCH", "/api/v1/templates/{template_id}", {}, "org_admin"),
    ("DELETE", "/api/v1/templates/{victim_template_id}", None, "org_admin"),
    ("POST", "/api/v1/templates/{gone_template_id}/submit", None, "org_admin"),
    ("POST", "/api/v1/templates/sync", {}, "org_admin"),
    ("POST", "/api/v1/templates/{template_id}/preview", {"parameters": []}, "viewer"),
    # webhook events: org_admin (super_admin also reads ?unrouted=true)
    ("GET", "/api/v1/webhooks/events", None, "org_admin"),
    # conversations and messages: reads for every role, writes agent+ ({}
    # bodies are 422; close of the tenant's own conversation is harmless)
    ("GET", "/api/v1/conversations", None, "viewer"),
    ("GET", "/api/v1/conversations/{conversation_id}", None, "viewer"),
    ("GET", "/api/v1/conversations/{conversation_id}/messages", None, "viewer"),
    ("POST", "/api/v1/conversations/{conversation_id}/assign", {}, "agent"),
    ("POST", "/api/v1/conversations/{conversation_id}/close", None, "agent"),
    ("POST", "/api/v1/messages", {}, "agent"),
    ("GET", "/api/v1/messages/{message_id}", None, "viewer"),
    # contacts: reads for every role, writes agent+ (an allowed import with
    # a JSON body is 415, an allowed POST {} is 422)
    ("GET", "/api/v1/contacts", None, "viewer"),
    ("POST", "/api/v1/contacts", {}, "agent"),
    ("POST", "/api/v1/contacts/import", {}, "agent"),
    ("GET", "/api/v1/contacts/{contact_id}", None, "viewer"),
    ("PATCH", "/api/v1/contacts/{contact_id}", {}, "agent"),
    ("DELETE", "/api/v1/contacts/{victim_contact_id}", None, "agent"),
    ("POST", "/api/v1/contacts/{contact_id}/opt-out", None, "agent"),
    ("POST", "/api/v1/contacts/{contact_id}/opt-in", None, "agent"),
    # costs: reads for every role (summary without dates is 422), the budget
    # org_admin (PUT {} is 422); no ids: tenancy is checked in test_costs.py
    ("GET", "/api/v1/costs/summary", None, "viewer"),
    ("GET", "/api/v1/costs/budget", None, "viewer"),
    ("PUT", "/api/v1/costs/budget", {}, "org_admin"),
    ("GET", "/api/v1/costs/alerts", None, "viewer"),
    # campaigns: reads (and the estimate) for every role, the rest org_admin
    # (POST {} is 422; actions on a cancelled campaign are 409)
    ("GET", "/api/v1/campaigns", None, "viewer"),
    ("POST", "/api/v1/campaigns", {}, "org_admin"),
    ("GET", "/api/v1/campaigns/{campaign_id}", None, "viewer"),
    ("POST", "/api/v1/campaigns/{campaign_id}/estimate", None, "viewer"),
    ("POST", "/api/v1/campaigns/{ended_campaign_id}/start", None, "org_admin"),
    ("POST", "/api/v1/campaigns/{ended_campaign_id}/pause", None, "org_admin"),
    ("POST", "/api/v1/campaigns/{ended_campaign_id}/resume", None, "org_admin"),
    ("POST", "/api/v1/campaigns/{ended_campaign_id}/cancel", None, "org_admin"),
    ("GET", "/api/v1/campaigns/{campaign_id}/recipients", None, "viewer"),
    # organizations by id and rate cards: super_admin (a PUT that is not
    # CSV is refused after the role check)
    ("GET", "/api/v1/organizations/{org_id}", None, "super_admin"),
    ("GET", "/api/v1/pricing/rates", None, "viewer"),
    ("PUT", "/api/v1/pricing/rates", {}, "super_admin"),
]


# Authenticated routes the role matrix leaves out, and why (test_users.py
# checks every other one is in ROLE_ROUTES).
NOT_IN_ROLE_MATRIX = {
    ("POST", "/api/v1/auth/logout"): "ends the caller's session (every role may; test_auth.py)",
}


def collect_ids(srv, tenant):
    ids = {}
    for maker in RESOURCE_MAKERS:
        ids.update(maker(srv, tenant))
    return ids


def _snapshot(tc, srv, tenant, ids):
    token = tenant["users"]["org_admin"]["token"]
    out = {}
    for name, path in SNAPSHOTS.items():
        if name not in ids:
            continue
        r = srv.request("GET", path.format(**ids), headers=bearer(token))
        tc.assertEqual(r.status, 200, "A reads its own %s: %r" % (name, r))
        out[name] = r.json()
    return out


def check_cross_tenant(tc, srv, a, b, routes=None):
    """B's org_admin uses A's ids on every route: 404 not_found, no leak,
    A unchanged. Also a random UUID and a non-UUID give the same 404."""
    ids = collect_ids(srv, a)
    before = _snapshot(tc, srv, a, ids)
    token_b = b["users"]["org_admin"]["token"]
    for method, path, body in routes or TENANT_ROUTES:
        for label, values in (("A's id", ids),
                              ("unknown id", {k: "00000000-0000-7000-8000-000000000000" for k in ids}),
                              ("not a uuid", {k: "not-a-uuid" for k in ids})):
            url = path.format(**values)
            with tc.subTest(route="%s %s" % (method, path), case=label):
                r = srv.request(method, url, body, headers=bearer(token_b))
                tc.assertEqual(r.status, 404, r)
                tc.assertEqual(r.json()["error"]["code"], "not_found")
                for v in ids.values():
                    tc.assertNotIn(v, r.text.replace(url, ""), "answer leaks A's id")
    tc.assertEqual(_snapshot(tc, srv, a, ids), before, "B changed A's resources")


def check_role_matrix(tc, srv, tenant, su_token, ids, routes=None):
    """Each route x role: 403 forbidden exactly when the role is below the
    route's least role; otherwise neither 401 nor 403. ids the caller does
    not pass come from RESOURCE_MAKERS (tenant's own resources)."""
    ids = dict(collect_ids(srv, tenant), org_id=tenant["org_id"], **ids)  # the caller's ids win
    tokens = {role: tenant["users"][role]["token"] for role in ("viewer", "agent", "org_admin")}
    tokens["super_admin"] = su_token
    for method, path, body, least in routes or ROLE_ROUTES:
        for role, token in tokens.items():
            with tc.subTest(route="%s %s" % (method, path), role=role):
                r = srv.request(method, path.format(**ids), body, headers=bearer(token))
                if ROLE_ORDER[role] < ROLE_ORDER[least]:
                    tc.assertEqual(r.status, 403, r)
                    tc.assertEqual(r.json()["error"]["code"], "forbidden")
                else:
                    tc.assertNotIn(r.status, (401, 403), r)
