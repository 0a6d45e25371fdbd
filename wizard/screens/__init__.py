"""The nine steps, in the guide's order. Each screen is its own module."""

from wizard.screens.apply import ApplyScreen
from wizard.screens.backend import BackendScreen
from wizard.screens.butterfly import ButterflyScreen
from wizard.screens.certificates import CertificatesScreen
from wizard.screens.cipher_policy import CipherPolicyScreen
from wizard.screens.echo import EchoScreen
from wizard.screens.review import ReviewScreen
from wizard.screens.start import StartScreen
from wizard.screens.virtual_server import VirtualServerScreen

STEPS = [
    StartScreen,
    CertificatesScreen,
    BackendScreen,
    CipherPolicyScreen,
    VirtualServerScreen,
    ReviewScreen,
    ApplyScreen,
    EchoScreen,
    ButterflyScreen,
]

assert [s.INDEX for s in STEPS] == list(range(len(STEPS)))
