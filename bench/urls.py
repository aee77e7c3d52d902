"""The portal's URLs plus the bare baseline webhook of the ingestion benchmark."""

from django.urls import path

from bench.baseline import baseline_webhook
from config.urls import urlpatterns as portal_urlpatterns

urlpatterns = [path("bench/baseline/", baseline_webhook), *portal_urlpatterns]
