from decimal import Decimal

from service_kit.settings import ServiceSettings


class PaymentsSettings(ServiceSettings):
    service_name: str = "payments"
    # The simulated provider declines any charge above this amount (deterministic, for tests and demos).
    payment_decline_above: Decimal = Decimal("10000")
