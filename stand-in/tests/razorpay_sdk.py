"""The official Razorpay Python SDK against the stand-in: every REST call BMS relies on, and the
SDK's own signature check over what the stand-in's Checkout returns.

Usage: razorpay_sdk.py BASE_URL KEY_ID KEY_SECRET (BASE_URL of the stand-in, without /razorpay).
Prints "ok" when every call answered as Razorpay would.
"""

import json
import sys
import urllib.request

import razorpay


def main(base, key_id, key_secret):
    client = razorpay.Client(auth=(key_id, key_secret), base_url=base + "/razorpay")

    order = client.order.create(
        {"amount": 50000, "currency": "INR", "receipt": "booking-1", "notes": {"booking_id": "b-1"}}
    )
    assert order["entity"] == "order" and order["status"] == "created", order
    assert client.order.fetch(order["id"])["amount"] == 50000

    # The buyer pays in Checkout (the stand-in's test control plays it).
    request = urllib.request.Request(
        base + "/razorpay/test/pay",
        data=json.dumps({"order_id": order["id"]}).encode(),
        headers={"content-type": "application/json"},
    )
    paid = json.load(urllib.request.urlopen(request))
    payment_id = paid["razorpay_payment_id"]
    client.utility.verify_payment_signature(paid)

    assert client.payment.fetch(payment_id)["status"] == "authorized"
    assert client.payment.capture(payment_id, 50000)["status"] == "captured"
    payments = client.order.payments(order["id"])
    assert payments["count"] == 1 and payments["items"][0]["id"] == payment_id, payments

    refund = client.payment.refund(payment_id, {"amount": 20000, "receipt": "refund-1"})
    assert refund["entity"] == "refund" and refund["amount"] == 20000, refund
    assert client.refund.fetch(refund["id"])["payment_id"] == payment_id
    assert client.payment.fetch_multiple_refund(payment_id)["count"] == 1
    assert client.payment.fetch_refund_id(payment_id, refund["id"])["id"] == refund["id"]

    # Errors come in Razorpay's shape, so the SDK raises its own error, not a JSON one.
    for call in (
        lambda: client.payment.fetch("pay_doesnotexist"),
        lambda: client.refund.fetch("rfnd_doesnotexist"),
        lambda: client.order.fetch("order_doesnotexist"),
        lambda: client.payment.capture(payment_id, 50000),
    ):
        try:
            call()
        except razorpay.errors.BadRequestError:
            continue
        raise AssertionError("expected the SDK to raise BadRequestError")
    print("ok")


if __name__ == "__main__":
    main(*sys.argv[1:4])
