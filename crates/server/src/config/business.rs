//! The settings of selling and signing in: playback tokens, Stripe, fees, tip limits, token
//! packs and an identity provider's JWTs.

use super::{
    Config, ConfigError, MAX_PACK_TOKENS, MAX_PLATFORM_FEE_BPS, MAX_TIP, MAX_TOKEN_PACKS,
    TokenPack, invalid,
};

/// Parses `id:tokens:price_minor,...` (empty: no packs) in `currency`.
pub fn parse_token_packs(text: &str, currency: &str) -> Result<Vec<TokenPack>, String> {
    let mut packs: Vec<TokenPack> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let fields: Vec<&str> = item.split(':').map(str::trim).collect();
        let [id, tokens, price] = fields[..] else {
            return Err(format!("{item:?} is not id:tokens:price_minor"));
        };
        if id.is_empty()
            || id.len() > 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "pack id {id:?} must be 1 to 32 characters from a-z 0-9 _ -"
            ));
        }
        if packs.iter().any(|p| p.id == id) {
            return Err(format!("pack id {id:?} is listed twice"));
        }
        let tokens: i64 = tokens
            .parse()
            .ok()
            .filter(|t| (1..=MAX_PACK_TOKENS).contains(t))
            .ok_or_else(|| format!("{item:?}: tokens must be 1..={MAX_PACK_TOKENS}"))?;
        let max_price = greenroom_control::money::major_to_minor(MAX_TIP, currency)
            .map_err(|err| err.to_string())?;
        let amount_minor: i64 = price
            .parse()
            .ok()
            .filter(|p| (1..=max_price).contains(p))
            .ok_or_else(|| format!("{item:?}: the price must be 1..={max_price} minor units"))?;
        packs.push(TokenPack {
            id: id.to_owned(),
            tokens,
            amount_minor,
            currency: currency.to_owned(),
        });
    }
    if packs.len() > MAX_TOKEN_PACKS {
        return Err(format!("at most {MAX_TOKEN_PACKS} packs"));
    }
    Ok(packs)
}

impl Config {
    /// Playback tokens, payments and external identity.
    pub(super) fn validate_business(&mut self, token_packs: &str) -> Result<(), ConfigError> {
        use greenroom_control::playback_token::MIN_KEY_BYTES;
        if let Some(key) = &self.playback_key
            && key.len() < MIN_KEY_BYTES
        {
            return Err(invalid(
                "playback_key",
                format!("must have at least {MIN_KEY_BYTES} bytes"),
            ));
        }
        if !(10..=86_400).contains(&self.playback_token_ttl_secs) {
            return Err(invalid("playback_token_ttl_secs", "must be 10..=86400"));
        }
        match (&self.stripe_secret_key, &self.stripe_webhook_secret) {
            (None, None) => {}
            (Some(key), Some(secret)) => {
                if !(key.starts_with("sk_") || key.starts_with("rk_"))
                    || !key.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(invalid(
                        "stripe_secret_key",
                        "must be a Stripe secret key (sk_...) or restricted key (rk_...)",
                    ));
                }
                if !secret.starts_with("whsec_")
                    || secret.len() <= "whsec_".len()
                    || !secret.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(invalid(
                        "stripe_webhook_secret",
                        "must be a webhook signing secret (whsec_...)",
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    "stripe_secret_key",
                    "set both GREENROOM_STRIPE_SECRET_KEY and GREENROOM_STRIPE_WEBHOOK_SECRET, \
                     or neither",
                ));
            }
        }
        if let Some(base) = self.stripe_api_base.take() {
            let base = base.trim().trim_end_matches('/').to_owned();
            if !(base.starts_with("http://") || base.starts_with("https://"))
                || base.contains(['?', '#', ' '])
            {
                return Err(invalid(
                    "stripe_api_base",
                    "must be an http:// or https:// URL",
                ));
            }
            self.stripe_api_base = Some(base);
        }
        if self.platform_fee_bps > MAX_PLATFORM_FEE_BPS {
            return Err(invalid(
                "platform_fee_bps",
                format!("must be 0..={MAX_PLATFORM_FEE_BPS} (0 % to 50 %)"),
            ));
        }
        self.currency = self.currency.trim().to_ascii_lowercase();
        if greenroom_control::money::currency_exponent(&self.currency).is_none() {
            return Err(invalid(
                "currency",
                format!("{:?} is not an ISO 4217 code like usd", self.currency),
            ));
        }
        if self.tip_min < 1 || self.tip_min > self.tip_max || self.tip_max > MAX_TIP {
            return Err(invalid(
                "tip_min",
                format!("tip limits must satisfy 1 <= tip_min <= tip_max <= {MAX_TIP}"),
            ));
        }
        self.token_packs = parse_token_packs(token_packs, &self.currency)
            .map_err(|reason| invalid("token_packs", reason))?;
        for (setting, value) in [
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
        ] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(setting, "must not be empty"));
            }
        }
        if let Some(identity) = self.identity_config()? {
            greenroom_control::ExternalIdentity::new(identity).map_err(|err| {
                let setting = if self.jwt_public_key_file.is_some() {
                    "jwt_public_key_file"
                } else {
                    "jwt_hs256_secret"
                };
                invalid(setting, err.to_string())
            })?;
        }
        Ok(())
    }

    /// The identity provider settings (the public key file read now), `None` when JWT
    /// sign-in is off.
    pub fn identity_config(
        &self,
    ) -> Result<Option<greenroom_control::IdentityConfig>, ConfigError> {
        use greenroom_control::{IdentityConfig, IdentityKey};
        let key = match (&self.jwt_hs256_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "jwt_hs256_secret",
                    "set GREENROOM_JWT_HS256_SECRET or GREENROOM_JWT_PUBLIC_KEY_FILE, not both",
                ));
            }
            (Some(secret), None) => IdentityKey::Hs256(secret.as_bytes().to_vec()),
            (None, Some(path)) => {
                let pem = std::fs::read(path).map_err(|err| {
                    invalid(
                        "jwt_public_key_file",
                        format!("cannot read {}: {err}", path.display()),
                    )
                })?;
                IdentityKey::PublicKeyPem(pem)
            }
            (None, None) => {
                if self.jwt_issuer.is_some() || self.jwt_audience.is_some() {
                    return Err(invalid(
                        "jwt_issuer",
                        "an issuer or audience needs GREENROOM_JWT_HS256_SECRET or \
                         GREENROOM_JWT_PUBLIC_KEY_FILE",
                    ));
                }
                return Ok(None);
            }
        };
        let (Some(issuer), Some(audience)) = (&self.jwt_issuer, &self.jwt_audience) else {
            return Err(invalid(
                "jwt_issuer",
                "JWT sign-in needs both GREENROOM_JWT_ISSUER and GREENROOM_JWT_AUDIENCE",
            ));
        };
        Ok(Some(IdentityConfig {
            key,
            issuer: issuer.trim().to_owned(),
            audience: audience.trim().to_owned(),
        }))
    }
}
