"""Field actions behind one batch interface, and the registry that names them.

- :mod:`plugins.base`: the interface (FieldAction, FieldValue, FieldResult,
  ActionContext, Subject, Authorizer, Decision, RateLimiter);
- :mod:`plugins.registry`: ``create_action(name, options)``, ``action_names()``;
  built-ins tokenize, detokenize, redact, mask, hash; third-party actions from
  the ``tokengate.plugins`` entry-point group, custom authorizers from
  ``tokengate.authorizers`` (a duplicate name stops start-up);
- :mod:`plugins.authorize`: the ``allow`` rules of detokenize;
- :mod:`plugins.ratelimit`: per-subject detokenize limits (memory, Redis);
- :mod:`plugins.disclosure`: the audit of detokenize decisions.
"""
