//! A streamed answer as a Server-Sent Events body: the role chunk, text chunks as the engine sends
//! them, the finish chunk, an optional usage chunk, then `data: [DONE]`. Dropping the body (the
//! client left) drops the engine's receiver, which frees the slot at the next decode step. The
//! request's trace lives in the body too: it ends after the last event, or when the client left.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderValue, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::engine::{Event, Usage};
use crate::error::ApiError;
use crate::http::Body;
use crate::openai::Meta;
use crate::trace::RequestTrace;

enum Phase {
    Start,
    Body,
    Usage(Usage),
    Done,
    End,
}

struct State {
    events: mpsc::UnboundedReceiver<Event>,
    meta: Meta,
    phase: Phase,
    /// Dropped with the body: after `[DONE]`, or early when the client leaves.
    trace: RequestTrace,
}

fn data(value: &Value) -> Result<Frame<Bytes>, Infallible> {
    Ok(Frame::data(Bytes::from(format!("data: {value}\n\n"))))
}

impl State {
    /// An error event that ends the stream, recorded in its trace.
    fn error(&mut self, error: ApiError) -> Result<Frame<Bytes>, Infallible> {
        self.trace.broken(error.code);
        data(&error.body_json())
    }
}

/// The SSE response for a job whose events arrive on `events`.
pub fn response(
    events: mpsc::UnboundedReceiver<Event>,
    meta: Meta,
    trace: RequestTrace,
) -> Response<Body> {
    let state = State { events, meta, phase: Phase::Start, trace };
    let frames = stream::unfold(state, |mut st| async move {
        loop {
            let frame = match std::mem::replace(&mut st.phase, Phase::Body) {
                Phase::Start => match st.meta.role_chunk() {
                    Some(chunk) => data(&chunk),
                    None => continue,
                },
                Phase::Body => match st.events.recv().await {
                    Some(Event::Text(t)) => data(&st.meta.text_chunk(&t)),
                    Some(Event::Done(reason, usage, timings)) => {
                        st.trace.complete(reason, usage, timings);
                        st.phase =
                            if st.meta.include_usage { Phase::Usage(usage) } else { Phase::Done };
                        data(&st.meta.finish_chunk(reason))
                    }
                    Some(Event::Failed(message)) => {
                        st.phase = Phase::Done;
                        st.error(ApiError::internal(message))
                    }
                    None => {
                        st.phase = Phase::Done;
                        st.error(ApiError::unavailable("the engine stopped"))
                    }
                },
                Phase::Usage(usage) => {
                    st.phase = Phase::Done;
                    data(&st.meta.usage_chunk(usage))
                }
                Phase::Done => {
                    st.phase = Phase::End;
                    Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n")))
                }
                Phase::End => return None,
            };
            return Some((frame, st));
        }
    });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
