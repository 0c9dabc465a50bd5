"""The multi-team layer: access rule, identity store, interceptor and AdminService."""
