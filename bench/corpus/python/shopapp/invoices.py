from cloudstore.client import Bucket


def archive_invoice(endpoint, invoice_id, pdf):
    Bucket(endpoint, "invoices-prod").put_object(f"{invoice_id}.pdf", pdf)
