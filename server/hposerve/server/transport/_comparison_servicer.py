"""The ComparisonService servicer: unpack the request, make one domain call, pack the answer.

It holds no state of its own; errors are mapped in ``_errors``.
"""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from hposerve.server.domain import ComparisonRef, ComparisonRegistry
from hposerve.server.domain import _names as names
from hposerve.server.transport import _comparison_converters as cconv
from hposerve.server.transport import _converters as conv
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
    def CreateComparison(
        self, request: cpb.CreateComparisonRequest, context: grpc.ServicerContext
    ) -> cpb.Comparison:
        info = self._comparisons.create_comparison(
            ComparisonRef(names.namespace_from_name(request.parent), request.comparison_id),
            cconv.comparison_spec_from_proto(request),
            load_if_exists=request.load_if_exists,
            request_id=request.request_id,
        )
        return cconv.comparison_to_proto(info)

    @rpc
    def GetComparison(
        self, request: cpb.GetComparisonRequest, context: grpc.ServicerContext
    ) -> cpb.Comparison:
        ref = names.comparison_ref_from_name(request.name)
        return cconv.comparison_to_proto(self._comparisons.get_comparison(ref))

    @rpc
    def ListComparisons(
        self, request: cpb.ListComparisonsRequest, context: grpc.ServicerContext
    ) -> cpb.ListComparisonsResponse:
        limit = conv.page_size(request.page_size, **_COMPARISON_PAGE)
        infos = self._comparisons.list_comparisons(
            names.namespace_from_name(request.parent),
            after=conv.decode_page_token(request.page_token, ""),
            limit=limit + 1,
        )
        infos, token = conv.page(infos, limit, lambda info: info.ref.comparison)
        return cpb.ListComparisonsResponse(
            comparisons=[cconv.comparison_to_proto(i) for i in infos], next_page_token=token
        )

    @rpc
    def DeleteComparison(
        self, request: cpb.DeleteComparisonRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._comparisons.delete_comparison(
            names.comparison_ref_from_name(request.name), request_id=request.request_id
        )
        return empty_pb2.Empty()

    @rpc
    def AskComparisonTrial(
        self, request: cpb.AskComparisonTrialRequest, context: grpc.ServicerContext
    ) -> cpb.AskComparisonTrialResponse:
        ask = self._comparisons.ask(
            names.comparison_ref_from_name(request.comparison, "comparison"),
            request_id=request.request_id,
        )
        return cconv.comparison_ask_to_proto(ask)
