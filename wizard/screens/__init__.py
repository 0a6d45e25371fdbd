"""The nine steps, in the guide's order. Each screen is its own module."""

from dicomtls.wizard.screens.apply import ApplyScreen
from dicomtls.wizard.screens.butterfly import ButterflyScreen
from dicomtls.wizard.screens.certificates import CertificatesScreen
from dicomtls.wizard.screens.cipher_policy import CipherPolicyScreen
from dicomtls.wizard.screens.echo import EchoScreen
from dicomtls.wizard.screens.pacs import PacsScreen
from dicomtls.wizard.screens.review import ReviewScreen
from dicomtls.wizard.screens.start import StartScreen
from dicomtls.wizard.screens.virtual_server import VirtualServerScreen

STEPS = [
    StartScreen,
    CertificatesScreen,
    PacsScreen,
    CipherPolicyScreen,
    VirtualServerScreen,
    ReviewScreen,
    ApplyScreen,
    EchoScreen,
    ButterflyScreen,
]

assert [s.INDEX for s in STEPS] == list(range(len(STEPS)))
