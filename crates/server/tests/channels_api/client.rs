//! The API as one caller sees it: the admin, a signed-in account, or nobody.

use reqwest::StatusCode;
use serde_json::Value;

use super::ADMIN;

/// One caller: the admin, a session token, or nobody.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Admin,
    Token(&'a str),
    Nobody,
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub async fn call(
        &self,
        who: Who<'_>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, text) = self.call_text(who, method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn call_text(
        &self,
        who: Who<'_>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        match who {
            Who::Admin => request = request.bearer_auth(ADMIN),
            Who::Token(token) => request = request.bearer_auth(token),
            Who::Nobody => {}
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    /// Asserts an error answer's status and code.
    pub async fn refused(
        &self,
        who: Who<'_>,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) {
        let (answered, json) = self.call(who, method, path, body.clone()).await;
        assert_eq!(
            (answered.as_u16(), json["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {body:?}: {json}"
        );
    }

    pub async fn ok(
        &self,
        who: Who<'_>,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (answered, json) = self.call(who, method, path, body.clone()).await;
        assert_eq!(
            answered.as_u16(),
            status,
            "{method} {path} {body:?}: {json}"
        );
        json
    }
}
