//! OpenAPI schemas for the contract's enums, made from the enums themselves: the contract
//! crate knows nothing of OpenAPI, and a variant added there shows here by itself.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use vigil_core::{PlateColour, ViolationKind};

fn string_enum<'a>(description: &str, names: impl Iterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names.collect::<Vec<_>>()))
        .into()
}

/// [`PlateColour`] in the API document.
pub struct PlateColourSchema;

impl utoipa::PartialSchema for PlateColourSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "The plate's background colour: white private, yellow commercial transport, blue state, red military",
            PlateColour::ALL.iter().map(PlateColour::as_str),
        )
    }
}

impl utoipa::ToSchema for PlateColourSchema {
    fn name() -> Cow<'static, str> {
        "PlateColour".into()
    }
}

/// [`ViolationKind`] in the API document.
pub struct ViolationKindSchema;

impl utoipa::PartialSchema for ViolationKindSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "The violation, by the code the fine schedule knows it by",
            ViolationKind::ALL.iter().map(ViolationKind::as_str),
        )
    }
}

impl utoipa::ToSchema for ViolationKindSchema {
    fn name() -> Cow<'static, str> {
        "ViolationKind".into()
    }
}
