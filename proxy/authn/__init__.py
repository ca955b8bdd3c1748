"""The gateway's HTTP side of sessions: login, cookies, authentication, authorization, proofs."""
