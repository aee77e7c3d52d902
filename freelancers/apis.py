"""The JSON API: a freelancer reads and updates their own application; staff list and act.

Thin: parse input with small serializers, call a service or selector, render output. Workflow
errors become 400 (illegal transition, incomplete application) or 403 (permission, four eyes).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from freelancers import selectors
from freelancers.models import Freelancer, Province, ServiceCategory
from freelancers.services import applications, workflow


class CategoryOutput(serializers.ModelSerializer):
    class Meta:
        model = ServiceCategory
        fields = ["slug", "name", "is_it"]


class ApplicationOutput(serializers.ModelSerializer):
    categories = CategoryOutput(many=True, read_only=True)
    status_display = serializers.CharField(source="registration_state", read_only=True)
    missing = serializers.SerializerMethodField()

    class Meta:
        model = Freelancer
        fields = [
            "id",
            "full_name",
            "cnic",
            "date_of_birth",
            "mobile",
            "address",
            "city",
            "province",
            "categories",
            "status",
            "status_display",
            "registration_number",
            "submitted_at",
            "approved_at",
            "expires_on",
            "is_renewal",
            "missing",
        ]

    def get_missing(self, obj) -> dict[str, str]:
        return applications.application_missing(freelancer=obj)


class StaffApplicationListOutput(serializers.ModelSerializer):
    cnic = serializers.CharField(source="masked_cnic")
    email = serializers.EmailField(source="user.email")

    class Meta:
        model = Freelancer
        fields = [
            "id",
            "full_name",
            "email",
            "cnic",
            "province",
            "status",
            "registration_number",
            "submitted_at",
            "expires_on",
        ]


class ApplicationUpdateInput(serializers.Serializer):
    full_name = serializers.CharField(max_length=200)
    cnic = serializers.CharField(max_length=15)
    date_of_birth = serializers.DateField()
    mobile = serializers.CharField(max_length=20)
    address = serializers.CharField(max_length=300)
    city = serializers.CharField(max_length=100)
    province = serializers.ChoiceField(choices=Province.choices)
    categories = serializers.SlugRelatedField(
        slug_field="slug", queryset=ServiceCategory.objects.all(), many=True, required=False
    )


class SubmitInput(serializers.Serializer):
    declaration = serializers.BooleanField()
    response = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_declaration(self, value):
        if not value:
            raise serializers.ValidationError("Accept the declaration to submit.")
        return value


ACTIONS = {"recommend", "approve", "reject", "request-changes", "suspend", "reinstate"}


class ActionInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    decision = serializers.ChoiceField(choices=["approve", "reject"], required=False)


def _raise_workflow(exc: Exception):
    if isinstance(exc, workflow.IncompleteApplication):
        raise DRFValidationError({"missing": exc.missing, "detail": str(exc)})
    if isinstance(exc, workflow.NotPermitted | workflow.FourEyesViolation):
        raise PermissionDenied(str(exc))
    if isinstance(exc, applications.ApplicationLocked):
        raise DRFValidationError({"status": [str(exc)]})
    raise DRFValidationError({"detail": str(exc)})


def _own_freelancer(request) -> Freelancer:
    freelancer = selectors.freelancer_for_user(user=request.user)
    if freelancer is None:
        raise NotFound("You have no freelancer application.")
    return freelancer


class MyApplicationApi(APIView):
    """GET/PUT /api/v1/freelancers/me/ — the signed-in freelancer's own application only."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ApplicationOutput)
    def get(self, request):
        return Response(ApplicationOutput(_own_freelancer(request)).data)

    @extend_schema(request=ApplicationUpdateInput, responses=ApplicationOutput)
    def put(self, request):
        freelancer = _own_freelancer(request)
        if not freelancer.email_verified_at:
            raise PermissionDenied("Confirm your e-mail address first.")
        data = ApplicationUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        categories = values.pop("categories", None)
        try:
            applications.freelancer_update_personal(freelancer=freelancer, **values)
            if categories is not None:
                applications.freelancer_set_categories(freelancer=freelancer, categories=categories)
        except DjangoValidationError as exc:
            raise DRFValidationError(exc.message_dict)
        except applications.ApplicationLocked as exc:
            _raise_workflow(exc)
        freelancer.refresh_from_db()
        return Response(ApplicationOutput(freelancer).data)


class MyApplicationSubmitApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=SubmitInput, responses=ApplicationOutput)
    def post(self, request):
        freelancer = _own_freelancer(request)
        data = SubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            applications.freelancer_accept_declaration(freelancer=freelancer)
            freelancer = workflow.application_submit(
                freelancer=freelancer, actor=request.user, response=data.validated_data["response"]
            )
        except (workflow.WorkflowError, applications.ApplicationLocked) as exc:
            _raise_workflow(exc)
        return Response(ApplicationOutput(freelancer).data)


class IsBoardStaff(BasePermission):
    message = "Board staff only."

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and user.has_perm("freelancers.view_freelancer")
        )


class ApplicationCursor(CursorPagination):
    # Keyset pagination: no COUNT over a million rows, stable under inserts.
    ordering = "-id"
    page_size = 50


class StaffApplicationListApi(APIView):
    """GET /api/v1/freelancers/applications/?status=submitted — staff only."""

    permission_classes = [IsBoardStaff]

    @extend_schema(
        responses=inline_serializer(
            "StaffApplicationPage",
            fields={
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": StaffApplicationListOutput(many=True),
            },
        ),
        operation_id="v1_freelancers_applications_list",
        parameters=[
            OpenApiParameter("status", str, OpenApiParameter.QUERY, enum=Freelancer.Status.values)
        ],
    )
    def get(self, request):
        queryset = selectors.applications_for_staff()
        status_filter = request.query_params.get("status")
        if status_filter:
            if status_filter not in Freelancer.Status.values:
                raise DRFValidationError({"status": [f"Unknown status {status_filter!r}."]})
            queryset = queryset.filter(status=status_filter)
        paginator = ApplicationCursor()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(StaffApplicationListOutput(page, many=True).data)


class StaffApplicationDetailApi(APIView):
    permission_classes = [IsBoardStaff]

    @extend_schema(responses=ApplicationOutput)
    def get(self, request, pk: int):
        return Response(ApplicationOutput(get_object_or_404(Freelancer, pk=pk)).data)


class StaffApplicationActionApi(APIView):
    """POST /api/v1/freelancers/applications/<id>/<action>/ with {reason, decision}."""

    permission_classes = [IsBoardStaff]

    @extend_schema(
        request=ActionInput,
        responses=ApplicationOutput,
        parameters=[
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=sorted(ACTIONS)),
        ],
    )
    def post(self, request, pk: int, action: str):
        if action not in ACTIONS:
            raise NotFound(f"Unknown action {action!r}.")
        freelancer = get_object_or_404(Freelancer, pk=pk)
        data = ActionInput(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data["reason"]
        user = request.user
        try:
            if action == "recommend":
                decision = data.validated_data.get("decision")
                if not decision:
                    raise DRFValidationError({"decision": ["Choose approve or reject."]})
                workflow.application_recommend(
                    freelancer=freelancer, reviewer=user, decision=decision, note=reason
                )
            elif action == "approve":
                workflow.application_approve(freelancer=freelancer, approver=user, reason=reason)
            elif action == "reject":
                workflow.application_reject(freelancer=freelancer, approver=user, reason=reason)
            elif action == "request-changes":
                workflow.application_request_changes(
                    freelancer=freelancer, actor=user, reason=reason
                )
            elif action == "suspend":
                workflow.application_suspend(freelancer=freelancer, approver=user, reason=reason)
            else:
                workflow.application_reinstate(freelancer=freelancer, approver=user, reason=reason)
        except workflow.WorkflowError as exc:
            _raise_workflow(exc)
        freelancer.refresh_from_db()
        return Response(ApplicationOutput(freelancer).data, status=status.HTTP_200_OK)


urlpatterns = [
    path("me/", MyApplicationApi.as_view(), name="api-me"),
    path("me/submit/", MyApplicationSubmitApi.as_view(), name="api-me-submit"),
    path("applications/", StaffApplicationListApi.as_view(), name="api-applications"),
    path("applications/<int:pk>/", StaffApplicationDetailApi.as_view(), name="api-application"),
    path(
        "applications/<int:pk>/<slug:action>/",
        StaffApplicationActionApi.as_view(),
        name="api-application-action",
    ),
]
