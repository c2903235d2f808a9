//! The fields of a request object that the proxy does not type, kept as raw JSON text, and the
//! deserialisers that split an object into its typed fields and those.
//!
//! Untyped fields were `serde_json::Value`s behind `#[serde(flatten)]`: flatten buffers every
//! unknown field in serde's internal `Content` tree first, and a `Value` array of numbers takes
//! about 16 times its JSON size (measured: BENCHMARKS.md, "Request body memory"). Raw text is
//! forwarded verbatim, costs its own size, and is parsed only by whoever needs to look inside.
//! `RawValue` cannot sit behind `flatten`, so the objects are deserialised by [`object_with_extra`].

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

/// Untyped fields in their original order, each as raw JSON text.
#[derive(Debug, Clone, Default)]
pub struct Extra(Vec<(String, Box<RawValue>)>);

impl Extra {
    /// The raw JSON of field `key`, if present.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// Every field, in the client's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets field `key`, replacing an earlier value.
    pub fn insert(&mut self, key: String, value: Box<RawValue>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes field `key`, returning its raw JSON.
    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(index).1)
    }

    /// Field `key` parsed as `T`; `None` when absent or of another shape.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self, key: &str) -> Option<T> {
        serde_json::from_str(self.get(key)?.get()).ok()
    }
}

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// A required field's value, or serde's "missing field" error.
pub fn required<T, E: serde::de::Error>(value: Option<T>, name: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(name))
}

/// An optional field: absent and `null` are both `None`.
pub fn optional<T>(value: Option<Option<T>>) -> Option<T> {
    value.flatten()
}

/// Implements `Deserialize` for a struct with the given required and optional (`Option<T>`)
/// fields and an `extra: Extra` field that receives every other key as raw JSON. Errors are
/// serde's own (missing field, duplicate field, wrong type), so `serde_path_to_error` still names
/// the failing field.
macro_rules! object_with_extra {
    ($ty:ident, $what:literal,
     required { $($req:ident: $rname:literal),* $(,)? },
     optional { $($opt:ident: $oname:literal),* $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> serde::de::Visitor<'de> for Fields {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        use serde::de::Error as _;
                        $(let mut $req = None;)*
                        $(let mut $opt = None;)*
                        let mut extra = $crate::request::extra::Extra::default();
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $($rname => {
                                    if $req.is_some() {
                                        return Err(A::Error::duplicate_field($rname));
                                    }
                                    $req = Some(map.next_value()?);
                                })*
                                $($oname => {
                                    if $opt.is_some() {
                                        return Err(A::Error::duplicate_field($oname));
                                    }
                                    $opt = Some(map.next_value()?);
                                })*
                                _ => {
                                    let value = map.next_value()?;
                                    extra.insert(key, value);
                                }
                            }
                        }
                        Ok($ty {
                            $($req: $crate::request::extra::required($req, $rname)?,)*
                            $($opt: $crate::request::extra::optional($opt),)*
                            extra,
                        })
                    }
                }
                deserializer.deserialize_map(Fields)
            }
        }
    };
}
pub(crate) use object_with_extra;
