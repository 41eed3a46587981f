"""The security boundary: policy engine, exec rules, sandbox, RBAC, SSRF, approvals, audit."""
