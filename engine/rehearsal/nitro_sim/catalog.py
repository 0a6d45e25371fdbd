"""What the simulated ADC knows: cipher names, groups, features, types, and the attributes each
resource accepts (public references as cited per constant)."""

from __future__ import annotations

from dicomtls.engine.ciphers import SUITES

DEFAULT_USER = "nsroot"
SSL_DIR = "/nsconfig/ssl"

PARTITIONS_DIR = "/nsconfig/partitions"  # [UNVERIFIED] each admin partition's files below <this>/<name>/ssl
REASONS = {200: "OK", 201: "Created", 207: "Multi Status", 400: "Bad Request", 401: "Unauthorized",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 599: "Netscaler specific error"}

# Built-in cipher-suite names the simulated ADC knows (§8.1), plus every name of our policy table.
KNOWN_CIPHERS = {
    "TLS1-AES-128-CBC-SHA", "TLS1-AES-256-CBC-SHA", "TLS1-DHE-RSA-AES-128-CBC-SHA", "TLS1-ECDHE-RSA-AES128-SHA",
    "TLS1-ECDHE-RSA-AES256-SHA", "TLS1.2-AES-128-SHA256", "TLS1.2-AES-256-SHA256", "TLS1.2-AES128-GCM-SHA256",
    "TLS1.2-AES256-GCM-SHA384", "TLS1.2-DHE-RSA-AES-128-SHA256", "TLS1.2-DHE-RSA-AES-256-SHA256",
    "TLS1.2-DHE-RSA-AES128-GCM-SHA256", "TLS1.2-DHE-RSA-AES256-GCM-SHA384", "TLS1.2-DHE-RSA-CHACHA20-POLY1305",
    "TLS1.2-ECDHE-ECDSA-AES128-GCM-SHA256", "TLS1.2-ECDHE-ECDSA-AES128-SHA256",
    "TLS1.2-ECDHE-ECDSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-ECDSA-AES256-SHA384",
    "TLS1.2-ECDHE-ECDSA-CHACHA20-POLY1305", "TLS1.2-ECDHE-RSA-AES-128-SHA256", "TLS1.2-ECDHE-RSA-AES-256-SHA384",
    "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256", "TLS1.2-ECDHE-RSA-AES256-GCM-SHA384",
    "TLS1.2-ECDHE-RSA-CHACHA20-POLY1305", "TLS1.3-AES128-GCM-SHA256", "TLS1.3-AES256-GCM-SHA384",
    "TLS1.3-CHACHA20-POLY1305-SHA256",
} | {s.netscaler for s in SUITES.values()}

# Predefined groups/aliases (§8.1): read-only; DEFAULT is bound to new SSL vservers.
BUILTIN_GROUPS: dict[str, list[str]] = {
    "DEFAULT": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
                "TLS1.2-ECDHE-RSA-AES-256-SHA384", "TLS1.2-ECDHE-RSA-AES-128-SHA256",
                "TLS1-ECDHE-RSA-AES256-SHA", "TLS1-ECDHE-RSA-AES128-SHA", "TLS1-AES-256-CBC-SHA",
                "TLS1-AES-128-CBC-SHA"],
    "DEFAULT_BACKEND": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
                        "TLS1-AES-256-CBC-SHA", "TLS1-AES-128-CBC-SHA"],
    "HIGH": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
             "TLS1.2-AES256-GCM-SHA384", "TLS1.2-AES128-GCM-SHA256"],
    "ECDHE": ["TLS1.2-ECDHE-RSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-RSA-AES128-GCM-SHA256",
              "TLS1.2-ECDHE-ECDSA-AES256-GCM-SHA384", "TLS1.2-ECDHE-ECDSA-AES128-GCM-SHA256"],
}

FEATURES = ["WL", "SP", "LB", "CS", "CR", "SC", "CMP", "PQ", "SSL", "GSLB", "HDOSP", "ROUTING", "CF", "IC",
            "SSLVPN", "AAA", "REWRITE", "RESPONDER"]
FEATURE_ALIASES = {"LOADBALANCING": "LB", "SSLOFFLOAD": "SSL", "SSLOFFLOADING": "SSL", "CONTENTSWITCHING": "CS"}

SERVICE_TYPES = {"HTTP", "FTP", "TCP", "UDP", "SSL", "SSL_BRIDGE", "SSL_TCP", "DTLS", "NNTP", "RPCSVR", "DNS",
                 "ADNS", "SNMP", "RTSP", "DHCPRA", "ANY", "SIP_UDP", "USER_TCP", "USER_SSL_TCP", "QUIC"}
SSL_TYPES = {"SSL", "SSL_TCP", "SSL_BRIDGE"}
FLAG_VALUES = {"ENABLED", "DISABLED"}

# Attributes each resource accepts in a request body; anything else is 278 "Invalid argument" (§12.3:
# the code for an unknown attribute is [UNVERIFIED]; 278 is the commonly assumed one).
ATTRS: dict[str, set[str]] = {
    "login": {"username", "password", "timeout", "new_password"},
    "logout": set(),
    "nsfeature": {"feature"},
    "systemfile": {"filename", "filelocation", "filecontent", "fileencoding"},
    "sslcertkey": {"certkey", "cert", "key", "inform", "passplain", "password", "expirymonitor",
                   "notificationperiod", "bundle", "nodomaincheck", "linkcertkeyname"},
    "service": {"name", "ip", "ipaddress", "servername", "servicetype", "port", "monconnectionclose",
                "healthmonitor", "state", "comment"},
    "sslcipher": {"ciphergroupname", "ciphgrpalias"},
    "sslcipher_sslciphersuite_binding": {"ciphergroupname", "ciphername", "cipherpriority"},
    "lbvserver": {"name", "servicetype", "ipv46", "port", "lbmethod", "comment", "clttimeout", "state"},
    "lbvserver_service_binding": {"name", "servicename", "weight"},
    "servicegroup": {"servicegroupname", "servicetype", "monconnectionclose", "healthmonitor", "state", "comment"},
    "servicegroup_servicegroupmember_binding": {"servicegroupname", "ip", "servername", "port", "weight", "state",
                                                "customserverid", "serverid", "hashid"},
    "lbvserver_servicegroup_binding": {"name", "servicegroupname", "weight"},
    "sslvserver_sslcertkey_binding": {"vservername", "certkeyname", "snicert", "ca", "crlcheck", "ocspcheck",
                                      "skipcaname"},
    "sslvserver_sslcipher_binding": {"vservername", "ciphername"},
    "sslvserver": {"vservername", "ssl3", "tls1", "tls11", "tls12", "tls13", "dh", "dhfile", "ersa",
                   "sessreuse", "sesstimeout", "snienable", "sslprofile"},
    "sslparameter": {"defaultprofile"},
    # ryancbutler/Citrix set-nsssl.ps1 sends these (and more) for `add ssl profile`
    "sslprofile": {"name", "sslprofiletype", "ssl3", "tls1", "tls11", "tls12", "tls13", "dh", "dhfile", "ersa",
                   "sessreuse", "sesstimeout", "snienable", "denysslreneg"},
    "sslprofile_sslcipher_binding": {"name", "ciphername", "cipherpriority"},
    "nspartition": {"partitionname"},
    "nsconfig": {"all"},
    "systemsession": {"sid"},
}
PROTOCOL_FLAGS = ["ssl3", "tls1", "tls11", "tls12", "tls13"]
