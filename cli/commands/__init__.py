"""One module per subcommand; each exposes register(subparsers) and sets `func` on its parser.

A func takes the parsed args and returns an exit code. It raises engine.errors.UserError for
anything the user can fix; cli.main prints that as a message with a fix, never a traceback.
"""

# Order is the order of `dicomtls --help`.
MODULES = [
    "check_pem",
    "make_cert",
    "plan",
    "apply",
    "status",
    "check",
    "export",
    "nitro_sim",
    "serve",
    "install_service",
    "echo",
]
