;; The compact-code scan's kernel (src/lib/page-codes.ts): per page row and query vector, the integer
;; inner product of the row's int8 codes with the query's int16 codes, 16 codes per SIMD step and
;; four query vectors per pass over a row. Rows are `stride` bytes (a multiple of 16); query vector q
;; is `2 * stride` bytes at `query + 2 * stride * q`; the product of row r with query vector q is
;; written as an i32 at `out + 4 * (r * 4 * quads + q)`. The caller keeps every sum within i32.
;; `terms` then turns those products into the page's bound terms: per query vector q, the largest of
;; s·t·p ± (f·n + m·e) over the rows, in doubles and in the same operations as the JavaScript it
;; replaced, so the bounds are bit for bit the same.
(module
  (memory (export "memory") 1)
  (func (export "dots")
    (param $codes i32) (param $rows i32) (param $stride i32) (param $query i32) (param $quads i32) (param $out i32)
    (local $end i32) (local $g i32) (local $k i32) (local $k2 i32) (local $quadBytes i32)
    (local $q0 i32) (local $q1 i32) (local $q2 i32) (local $q3 i32)
    (local $v v128) (local $lo v128) (local $hi v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $quadBytes (i32.shl (local.get $stride) (i32.const 3)))
    (local.set $end (i32.add (local.get $codes) (i32.mul (local.get $rows) (local.get $stride))))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $codes) (local.get $end)))
        (local.set $g (i32.const 0))
        (local.set $q0 (local.get $query))
        (block $quadsDone
          (loop $quad
            (br_if $quadsDone (i32.ge_u (local.get $g) (local.get $quads)))
            (local.set $q1 (i32.add (local.get $q0) (i32.shl (local.get $stride) (i32.const 1))))
            (local.set $q2 (i32.add (local.get $q1) (i32.shl (local.get $stride) (i32.const 1))))
            (local.set $q3 (i32.add (local.get $q2) (i32.shl (local.get $stride) (i32.const 1))))
          (local.set $a0 (v128.const i32x4 0 0 0 0))
          (local.set $a1 (v128.const i32x4 0 0 0 0))
          (local.set $a2 (v128.const i32x4 0 0 0 0))
          (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $k (i32.const 0))
            (block $codesDone
              (loop $code
                (br_if $codesDone (i32.ge_u (local.get $k) (local.get $stride)))
                (local.set $v (v128.load (i32.add (local.get $codes) (local.get $k))))
                (local.set $lo (i16x8.extend_low_i8x16_s (local.get $v)))
                (local.set $hi (i16x8.extend_high_i8x16_s (local.get $v)))
                (local.set $k2 (i32.shl (local.get $k) (i32.const 1)))
              (local.set $a0 (i32x4.add (local.get $a0) (i32x4.add
                (i32x4.dot_i16x8_s (local.get $lo) (v128.load (i32.add (local.get $q0) (local.get $k2))))
                (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (i32.add (local.get $q0) (local.get $k2)))))))
              (local.set $a1 (i32x4.add (local.get $a1) (i32x4.add
                (i32x4.dot_i16x8_s (local.get $lo) (v128.load (i32.add (local.get $q1) (local.get $k2))))
                (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (i32.add (local.get $q1) (local.get $k2)))))))
              (local.set $a2 (i32x4.add (local.get $a2) (i32x4.add
                (i32x4.dot_i16x8_s (local.get $lo) (v128.load (i32.add (local.get $q2) (local.get $k2))))
                (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (i32.add (local.get $q2) (local.get $k2)))))))
              (local.set $a3 (i32x4.add (local.get $a3) (i32x4.add
                (i32x4.dot_i16x8_s (local.get $lo) (v128.load (i32.add (local.get $q3) (local.get $k2))))
                (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (i32.add (local.get $q3) (local.get $k2)))))))
                (local.set $k (i32.add (local.get $k) (i32.const 16)))
                (br $code)))
          (i32.store offset=0 (local.get $out)
            (i32.add (i32.add (i32x4.extract_lane 0 (local.get $a0)) (i32x4.extract_lane 1 (local.get $a0)))
                     (i32.add (i32x4.extract_lane 2 (local.get $a0)) (i32x4.extract_lane 3 (local.get $a0)))))
          (i32.store offset=4 (local.get $out)
            (i32.add (i32.add (i32x4.extract_lane 0 (local.get $a1)) (i32x4.extract_lane 1 (local.get $a1)))
                     (i32.add (i32x4.extract_lane 2 (local.get $a1)) (i32x4.extract_lane 3 (local.get $a1)))))
          (i32.store offset=8 (local.get $out)
            (i32.add (i32.add (i32x4.extract_lane 0 (local.get $a2)) (i32x4.extract_lane 1 (local.get $a2)))
                     (i32.add (i32x4.extract_lane 2 (local.get $a2)) (i32x4.extract_lane 3 (local.get $a2)))))
          (i32.store offset=12 (local.get $out)
            (i32.add (i32.add (i32x4.extract_lane 0 (local.get $a3)) (i32x4.extract_lane 1 (local.get $a3)))
                     (i32.add (i32x4.extract_lane 2 (local.get $a3)) (i32x4.extract_lane 3 (local.get $a3)))))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (local.set $q0 (i32.add (local.get $q0) (local.get $quadBytes)))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $quad)))
        (local.set $codes (i32.add (local.get $codes) (local.get $stride)))
        (br $row))))
  ;; Per query vector q < `queryCount`: over the page's rows, the largest s·t·p + b and s·t·p - b, where
  ;; p is the row's product (from `dots`), s, e and n the row's scale, error and norm (float32 arrays of
  ;; `rows` each at `rowParams`: scales, then errors, then norms), t, f and m the query vector's scale,
  ;; error and norm (float64 arrays of `queryCount` each at `queryParams`), and b = f·n + m·e. Written as
  ;; float64 pairs (upper, lower) at `out + 16 * q`; -inf for a page without rows.
  (func (export "terms")
    (param $dots i32) (param $rows i32) (param $quads i32) (param $queryCount i32)
    (param $rowParams i32) (param $queryParams i32) (param $out i32)
    (local $q i32) (local $row i32) (local $at i32) (local $rowStep i32)
    (local $errorsAt i32) (local $normsAt i32)
    (local $t f64) (local $f f64) (local $m f64) (local $estimate f64) (local $bound f64)
    (local $upper f64) (local $lower f64)
    (local.set $rowStep (i32.shl (local.get $quads) (i32.const 4)))
    (local.set $errorsAt (i32.add (local.get $rowParams) (i32.shl (local.get $rows) (i32.const 2))))
    (local.set $normsAt (i32.add (local.get $errorsAt) (i32.shl (local.get $rows) (i32.const 2))))
    (block $queriesDone
      (loop $query
        (br_if $queriesDone (i32.ge_u (local.get $q) (local.get $queryCount)))
        (local.set $t (f64.load (i32.add (local.get $queryParams) (i32.shl (local.get $q) (i32.const 3)))))
        (local.set $f (f64.load (i32.add (local.get $queryParams)
          (i32.shl (i32.add (local.get $q) (local.get $queryCount)) (i32.const 3)))))
        (local.set $m (f64.load (i32.add (local.get $queryParams)
          (i32.shl (i32.add (local.get $q) (i32.shl (local.get $queryCount) (i32.const 1))) (i32.const 3)))))
        (local.set $upper (f64.const -inf))
        (local.set $lower (f64.const -inf))
        (local.set $at (i32.add (local.get $dots) (i32.shl (local.get $q) (i32.const 2))))
        (local.set $row (i32.const 0))
        (block $rowsDone
          (loop $row
            (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
            (local.set $estimate (f64.mul
              (f64.mul
                (f64.promote_f32 (f32.load (i32.add (local.get $rowParams) (i32.shl (local.get $row) (i32.const 2)))))
                (local.get $t))
              (f64.convert_i32_s (i32.load (local.get $at)))))
            (local.set $bound (f64.add
              (f64.mul (local.get $f)
                (f64.promote_f32 (f32.load (i32.add (local.get $normsAt) (i32.shl (local.get $row) (i32.const 2))))))
              (f64.mul (local.get $m)
                (f64.promote_f32 (f32.load (i32.add (local.get $errorsAt) (i32.shl (local.get $row) (i32.const 2))))))))
            (local.set $upper (f64.max (local.get $upper) (f64.add (local.get $estimate) (local.get $bound))))
            (local.set $lower (f64.max (local.get $lower) (f64.sub (local.get $estimate) (local.get $bound))))
            (local.set $at (i32.add (local.get $at) (local.get $rowStep)))
            (local.set $row (i32.add (local.get $row) (i32.const 1)))
            (br $row)))
        (f64.store offset=0 (i32.add (local.get $out) (i32.shl (local.get $q) (i32.const 4))) (local.get $upper))
        (f64.store offset=8 (i32.add (local.get $out) (i32.shl (local.get $q) (i32.const 4))) (local.get $lower))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $query))))
)
