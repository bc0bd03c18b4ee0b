//! The tiny kernels the tests launch, as PTX written by hand: no nvcc at build time,
//! and the driver compiles PTX for whatever GPU it runs on. Each kernel handles one
//! element per thread along x (`blockIdx.x * blockDim.x + threadIdx.x`) and writes
//! the same value however often it runs, so any grid and block shape is safe.
//! `ptxas -arch=sm_90` accepts it.

/// `out[i] = value`. Entry names are not mangled: the trace shows them as they are.
pub const FILL: &str = "fill";
/// `out[i] = factor * in[i]`.
pub const SCALE: &str = "scale";
/// `out[i] = a[i] + b[i]`.
pub const ADD: &str = "add";

/// The module: `fill(float *out, float value, unsigned n)`,
/// `scale(float *out, const float *in, float factor, unsigned n)` and
/// `add(float *out, const float *a, const float *b, unsigned n)`.
pub const MODULE: &str = r#"
.version 8.0
.target sm_75
.address_size 64

// fill(float *out, float value, unsigned n): out[i] = value
.visible .entry fill(.param .u64 out, .param .f32 value, .param .u32 n)
{
    .reg .pred  %past;
    .reg .b32   %i, %block, %size, %thread, %n;
    .reg .f32   %v;
    .reg .b64   %out, %offset;

    mov.u32         %block, %ctaid.x;
    mov.u32         %size, %ntid.x;
    mov.u32         %thread, %tid.x;
    mad.lo.u32      %i, %block, %size, %thread;
    ld.param.u32    %n, [n];
    setp.ge.u32     %past, %i, %n;
    @%past bra      END;
    ld.param.u64    %out, [out];
    ld.param.f32    %v, [value];
    cvta.to.global.u64 %out, %out;
    mul.wide.u32    %offset, %i, 4;
    add.u64         %out, %out, %offset;
    st.global.f32   [%out], %v;
END:
    ret;
}

// scale(float *out, const float *in, float factor, unsigned n): out[i] = factor * in[i]
.visible .entry scale(.param .u64 out, .param .u64 in, .param .f32 factor, .param .u32 n)
{
    .reg .pred  %past;
    .reg .b32   %i, %block, %size, %thread, %n;
    .reg .f32   %x, %a;
    .reg .b64   %out, %in, %offset;

    mov.u32         %block, %ctaid.x;
    mov.u32         %size, %ntid.x;
    mov.u32         %thread, %tid.x;
    mad.lo.u32      %i, %block, %size, %thread;
    ld.param.u32    %n, [n];
    setp.ge.u32     %past, %i, %n;
    @%past bra      END;
    ld.param.u64    %out, [out];
    ld.param.u64    %in, [in];
    ld.param.f32    %a, [factor];
    cvta.to.global.u64 %out, %out;
    cvta.to.global.u64 %in, %in;
    mul.wide.u32    %offset, %i, 4;
    add.u64         %out, %out, %offset;
    add.u64         %in, %in, %offset;
    ld.global.f32   %x, [%in];
    mul.f32         %x, %x, %a;
    st.global.f32   [%out], %x;
END:
    ret;
}

// add(float *out, const float *a, const float *b, unsigned n): out[i] = a[i] + b[i]
.visible .entry add(.param .u64 out, .param .u64 a, .param .u64 b, .param .u32 n)
{
    .reg .pred  %past;
    .reg .b32   %i, %block, %size, %thread, %n;
    .reg .f32   %x, %y;
    .reg .b64   %out, %a, %b, %offset;

    mov.u32         %block, %ctaid.x;
    mov.u32         %size, %ntid.x;
    mov.u32         %thread, %tid.x;
    mad.lo.u32      %i, %block, %size, %thread;
    ld.param.u32    %n, [n];
    setp.ge.u32     %past, %i, %n;
    @%past bra      END;
    ld.param.u64    %out, [out];
    ld.param.u64    %a, [a];
    ld.param.u64    %b, [b];
    cvta.to.global.u64 %out, %out;
    cvta.to.global.u64 %a, %a;
    cvta.to.global.u64 %b, %b;
    mul.wide.u32    %offset, %i, 4;
    add.u64         %out, %out, %offset;
    add.u64         %a, %a, %offset;
    add.u64         %b, %b, %offset;
    ld.global.f32   %x, [%a];
    ld.global.f32   %y, [%b];
    add.f32         %x, %x, %y;
    st.global.f32   [%out], %x;
END:
    ret;
}
"#;
