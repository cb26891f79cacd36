//! `/lf.a2a.v1.A2AService/{Method}`: A2A's gRPC binding, at the origin only (the edges' runtimes
//! pass no HTTP/2 trailers; the card says so by naming the origin for it). tonic does the gRPC
//! framing, status and streaming; the messages are prost-reflect dynamic messages over the
//! official `a2a.proto` (compiled into the binary by `build.rs`), turned into the same ProtoJSON
//! the JSON-RPC and HTTP+JSON bindings speak, so a call runs through the one `dispatch` in 1.0.
//! Errors are gRPC statuses with a `google.rpc.Status` carrying the A2A `ErrorInfo` in
//! `grpc-status-details-bin`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use agentplane_core::auth::Principal;
use agentplane_core::catalogue::{A2aOperation, A2aVersion};
use agentplane_core::jsonrpc::ErrorObject;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::Value;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use super::rpc::Outcome;
use super::{A2a, A2aError, Routed, admitted, dispatch, stream};

/// The service's full name in `a2a.proto`.
const SERVICE: &str = "lf.a2a.v1.A2AService";

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/a2a_descriptor.bin"));

/// The compiled `a2a.proto`; `None` only if the build embedded something unreadable.
fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTORS)
            .map_err(|e| tracing::error!(error = %e, "the embedded a2a.proto descriptors do not decode"))
            .ok()
    })
    .as_ref()
}

/// Reads and writes dynamic messages of one method's input and output types.
#[derive(Debug, Clone)]
struct DynamicCodec {
    input: MessageDescriptor,
}

#[derive(Debug)]
struct DynamicEncoder;

#[derive(Debug)]
struct DynamicDecoder(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.input.clone())
    }
}

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(format!("encoding the answer failed: {e}")))
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("the request is no {}: {e}", self.0.full_name())))
    }
}

/// One call: who makes it, which operation, and the type its answer has.
#[derive(Clone)]
struct GrpcCall {
    a2a: Arc<A2a>,
    principal: Principal,
    op: A2aOperation,
    /// The service's method, for the log.
    method: String,
    output: MessageDescriptor,
}

/// ProtoJSON of a request, under JSON names, as the other bindings' parameters are.
fn to_json(message: &DynamicMessage) -> Result<Value, Status> {
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|e| Status::invalid_argument(format!("unreadable request: {e}")))
}

/// An answer in ProtoJSON as the output type; fields the proto does not have are left out.
fn from_json(desc: &MessageDescriptor, v: Value) -> Result<DynamicMessage, Status> {
    DynamicMessage::deserialize_with_options(desc.clone(), v, &DeserializeOptions::new().deny_unknown_fields(false))
        .map_err(|e| {
            tracing::error!(error = %e, message = %desc.full_name(), "an A2A answer does not fit its proto type");
            Status::internal("internal error")
        })
}

/// `google.rpc.Status`, for `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// `google.rpc.ErrorInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
    #[prost(map = "string, string", tag = "3")]
    metadata: HashMap<String, String>,
}

/// A JSON-RPC error as a gRPC status: A2A's code mapping, and its `ErrorInfo` details.
fn status_of(error: &ErrorObject) -> Status {
    let code = Code::from(i32::from(agentplane_core::a2a_grpc::status_code(error.code, http::StatusCode::OK)));
    let details: Vec<prost_types::Any> = match &error.data {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let info = ErrorInfo {
                    reason: item.get("reason")?.as_str()?.to_owned(),
                    domain: item.get("domain").and_then(Value::as_str).unwrap_or("a2a-protocol.org").to_owned(),
                    metadata: HashMap::new(),
                };
                Some(prost_types::Any {
                    type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                    value: info.encode_to_vec(),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let status = RpcStatus { code: code as i32, message: error.message.clone(), details };
    Status::with_details(code, error.message.clone(), status.encode_to_vec().into())
}

fn refusal(e: &A2aError, method: &str) -> Status {
    if let A2aError::Internal(inner) = e {
        tracing::error!(error = %inner, method = %method, "A2A call failed");
    }
    status_of(&e.to_error_object(A2aVersion::V1_0))
}

impl GrpcCall {
    async fn run(&self, request: DynamicMessage) -> Result<Outcome, Status> {
        let params = to_json(&request)?;
        let call = self.a2a.call(A2aVersion::V1_0, &self.principal, stream::Framing::Grpc, None);
        dispatch(&call, self.op, &params).await.map_err(|e| refusal(&e, &self.method))
    }
}

impl tonic::server::UnaryService<DynamicMessage> for GrpcCall {
    type Response = DynamicMessage;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<DynamicMessage>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            match this.run(request.into_inner()).await? {
                Outcome::Result(v) => Ok(tonic::Response::new(from_json(&this.output, v)?)),
                Outcome::Stream(_) | Outcome::Events(_) => Err(Status::internal("a unary call answered with a stream")),
            }
        })
    }
}

type Events = Pin<Box<dyn Stream<Item = Result<DynamicMessage, Status>> + Send>>;

impl tonic::server::ServerStreamingService<DynamicMessage> for GrpcCall {
    type Response = DynamicMessage;
    type ResponseStream = Events;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Events>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let rx = match this.run(request.into_inner()).await? {
                Outcome::Events(rx) => rx,
                // A send answered with a message (no task): one event.
                Outcome::Result(v) => {
                    let (tx, rx) = tokio::sync::mpsc::channel(1);
                    let _ = tx.send((0, v)).await;
                    rx
                }
                Outcome::Stream(_) => return Err(Status::internal("a stream was framed for another binding")),
            };
            let output = this.output.clone();
            let events = futures::stream::unfold(rx, move |mut rx| {
                let output = output.clone();
                async move { rx.recv().await.map(|(_, v)| (from_json(&output, v), rx)) }
            });
            Ok(tonic::Response::new(Box::pin(events) as Events))
        })
    }
}

/// A gRPC answer that is only a status (trailers-only).
fn status_response(status: Status) -> Response {
    status.into_http::<tonic::body::Body>().map(axum::body::Body::new).into_response()
}

pub async fn handle(State(a2a): State<Arc<A2a>>, request: Request) -> Response {
    let (principal, method, op) = match admitted(&request) {
        Ok(Routed::Call(principal, _, message, op)) => (principal.clone(), message.method.clone(), op),
        Ok(Routed::NoCall) => return status_response(Status::internal("internal error")),
        Err((_, error)) => return status_response(status_of(&error)),
    };
    let Some(method) =
        pool().and_then(|p| p.get_service_by_name(SERVICE)).and_then(|s| s.methods().find(|m| m.name() == method))
    else {
        return status_response(Status::unimplemented(format!("{SERVICE}/{method} is not served")));
    };
    let call = GrpcCall { a2a, principal, op, method: method.name().to_owned(), output: method.output() };
    let mut grpc = tonic::server::Grpc::new(DynamicCodec { input: method.input() });
    let response = if method.is_server_streaming() {
        grpc.server_streaming(call, request).await
    } else {
        grpc.unary(call, request).await
    };
    response.map(axum::body::Body::new).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_the_official_service_is_an_a2a_operation() {
        let service = pool().and_then(|p| p.get_service_by_name(SERVICE)).expect("a2a.proto is embedded");
        let tools = agentplane_core::catalogue::ToolPolicies::default();
        let mut names = Vec::new();
        for method in service.methods() {
            let message = agentplane_core::a2a_grpc::request(&format!("/{SERVICE}/{}", method.name()));
            let route = agentplane_core::catalogue::route(
                &message,
                agentplane_core::catalogue::Dialect::A2a(A2aVersion::V1_0),
                &tools,
            );
            assert!(route.is_ok_and(|r| r.a2a.is_some()), "{}", method.name());
            names.push(method.name().to_owned());
        }
        assert_eq!(names.len(), 11, "{names:?}");
    }

    #[test]
    fn protojson_round_trips_through_dynamic_messages() {
        let service = pool().and_then(|p| p.get_service_by_name(SERVICE)).expect("a2a.proto is embedded");
        let send = service.methods().find(|m| m.name() == "SendMessage").expect("SendMessage");
        let params = serde_json::json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}],
            "metadata": {"sleep_ms": 5}}});
        let request = from_json(&send.input(), params.clone()).expect("a SendMessageRequest");
        let mut back = params;
        // A Struct's numbers are doubles (workflow::metadata_u64 reads 5.0 as 5).
        back["message"]["metadata"]["sleep_ms"] = serde_json::json!(5.0);
        assert_eq!(to_json(&request).expect("ProtoJSON"), back);
        // Fields the proto does not know are left out of an answer, not refused.
        let task = from_json(&send.output(), serde_json::json!({"task": {"id": "t", "kind": "task"}})).expect("a task");
        assert_eq!(to_json(&task).expect("ProtoJSON"), serde_json::json!({"task": {"id": "t"}}));
    }

    #[test]
    fn errors_carry_their_code_and_error_info() {
        let status = refusal(&A2aError::TaskNotFound, "GetTask");
        assert_eq!(status.code(), Code::NotFound);
        let details = RpcStatus::decode(status.details()).expect("a google.rpc.Status");
        assert_eq!(details.details[0].type_url, "type.googleapis.com/google.rpc.ErrorInfo");
        let info = ErrorInfo::decode(details.details[0].value.as_slice()).expect("an ErrorInfo");
        assert_eq!(info.reason, "TASK_NOT_FOUND");
        assert_eq!(refusal(&A2aError::TaskNotCancelable("completed"), "CancelTask").code(), Code::FailedPrecondition);
    }
}
