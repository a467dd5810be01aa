//! The return type of a decrypted value: the bytes are copied once into the
//! text datum Postgres hands to the client, and the Rust buffer is wiped.

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::IntoDatum;
use zeroize::Zeroizing;

/// A decrypted secret value, wiped from Rust memory when dropped.
pub struct Plaintext(pub Zeroizing<Vec<u8>>);

impl IntoDatum for Plaintext {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // The text and bytea varlena layouts are the same; the value was a
        // text in the database encoding when it was stored.
        self.0.as_slice().into_datum()
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTOID
    }
}

// SAFETY: the SQL type named here, text, is the one `into_datum` produces.
unsafe impl SqlTranslatable for Plaintext {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Plaintext);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("text"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("text")));
}

// SAFETY: the datum built by `into_datum` is returned to the function call
// at once, as the trait requires.
unsafe impl BoxRet for Plaintext {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        match self.into_datum() {
            // SAFETY: a text varlena allocated in the current memory context.
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}
