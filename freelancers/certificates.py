"""The registration certificate: a one-page PDF with the number and a QR code to /verify/."""

import io

from django.conf import settings
from django.urls import reverse
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from freelancers.models import Freelancer


def verification_url(freelancer: Freelancer) -> str:
    return settings.PORTAL_BASE_URL + reverse(
        "freelancers:verify-detail", args=[freelancer.registration_number]
    )


def certificate_pdf(*, freelancer: Freelancer) -> bytes:
    """Render the certificate of an approved freelancer (caller checks status and permission)."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(f"Registration certificate {freelancer.registration_number}")
    width, height = A4
    pdf.setStrokeColorRGB(0.04, 0.43, 0.31)
    pdf.setLineWidth(3)
    pdf.rect(15 * mm, 15 * mm, width - 30 * mm, height - 30 * mm)
    pdf.setFont("Helvetica-Bold", 22)
    pdf.drawCentredString(width / 2, height - 45 * mm, "Software Export Board")
    pdf.setFont("Helvetica", 16)
    pdf.drawCentredString(width / 2, height - 57 * mm, "Certificate of Freelancer Registration")
    pdf.setFont("Helvetica", 12)
    pdf.drawCentredString(width / 2, height - 80 * mm, "This certifies that")
    pdf.setFont("Helvetica-Bold", 18)
    pdf.drawCentredString(width / 2, height - 92 * mm, freelancer.full_name)
    pdf.setFont("Helvetica", 12)
    pdf.drawCentredString(
        width / 2, height - 104 * mm, "is registered with the Board as an IT/ITeS freelancer for:"
    )
    categories = ", ".join(c.name for c in freelancer.categories.all())
    pdf.drawCentredString(width / 2, height - 112 * mm, categories[:95])
    rows = [
        ("Registration number", freelancer.registration_number or ""),
        ("Registered on", f"{freelancer.approved_at:%d %B %Y}" if freelancer.approved_at else ""),
        ("Valid until", f"{freelancer.expires_on:%d %B %Y}" if freelancer.expires_on else ""),
    ]
    y = height - 135 * mm
    for label, value in rows:
        pdf.setFont("Helvetica", 12)
        pdf.drawRightString(width / 2 - 3 * mm, y, label + ":")
        pdf.setFont("Helvetica-Bold", 12)
        pdf.drawString(width / 2 + 3 * mm, y, value)
        y -= 9 * mm
    url = verification_url(freelancer)
    widget = QrCodeWidget(url)
    x0, y0, x1, y1 = widget.getBounds()
    size = 45 * mm
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, (width - size) / 2, 45 * mm)
    pdf.setFont("Helvetica", 10)
    pdf.drawCentredString(width / 2, 38 * mm, "Verify this certificate:")
    pdf.drawCentredString(width / 2, 32 * mm, url)
    pdf.linkURL(url, ((width - size) / 2, 45 * mm, (width + size) / 2, 45 * mm + size))
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
