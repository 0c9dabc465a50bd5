"""The ComparisonService servicer: unpack the request, make one domain call, pack the answer.

It holds no state of its own; errors are mapped in ``_errors``.
"""

from __future__ import annotations

from google.protobuf import empty_pb2

from hposerve.server.transport import _converters as conv
from hposerve.server.domain._comparisons import ComparisonRef, ComparisonRegistry
from hposerve.server.transport._errors import rpc
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc

# Each listed comparison costs a count of its members' trials: smaller pages than studies.
_COMPARISON_PAGE = {"default": 20, "maximum": 100}


class ComparisonServicer(comparison_service_pb2_grpc.ComparisonServiceServicer):
    """Serves a ``ComparisonRegistry`` over gRPC."""

    def __init__(self, comparisons: ComparisonRegistry) -> None:
        self._comparisons = comparisons

    @rpc
    def CreateComparison(self, request: cpb.CreateComparisonRequest, context) -> cpb.Comparison:
        namespace = conv.namespace_from_name(request.parent)
        info = self._comparisons.create_comparison(
            ComparisonRef(namespace, request.comparison_id),
            conv.comparison_spec_from_proto(request),
            load_if_exists=request.load_if_exists,
            request_id=request.request_id,
        )
        return conv.comparison_to_proto(info)

    @rpc
    def GetComparison(self, request: cpb.GetComparisonRequest, context) -> cpb.Comparison:
        ref = conv.comparison_ref_from_name(request.name)
        return conv.comparison_to_proto(self._comparisons.get_comparison(ref))

    @rpc
    def ListComparisons(
        self, request: cpb.ListComparisonsRequest, context
    ) -> cpb.ListComparisonsResponse:
        limit = conv.page_size(request.page_size, **_COMPARISON_PAGE)
        infos = self._comparisons.list_comparisons(
            conv.namespace_from_name(request.parent),
            after=conv.decode_page_token(request.page_token, ""),
            limit=limit + 1,
        )
        infos, token = conv.page(infos, limit, lambda info: info.ref.comparison)
        return cpb.ListComparisonsResponse(
            comparisons=[conv.comparison_to_proto(i) for i in infos], next_page_token=token
        )

    @rpc
    def DeleteComparison(self, request: cpb.DeleteComparisonRequest, context) -> empty_pb2.Empty:
        self._comparisons.delete_comparison(conv.comparison_ref_from_name(request.name))
        return empty_pb2.Empty()

    @rpc
    def AskComparisonTrial(
        self, request: cpb.AskComparisonTrialRequest, context
    ) -> cpb.AskComparisonTrialResponse:
        ask = self._comparisons.ask(
            conv.comparison_ref_from_name(request.comparison, "comparison"),
            request_id=request.request_id,
        )
        return conv.comparison_ask_to_proto(ask)
