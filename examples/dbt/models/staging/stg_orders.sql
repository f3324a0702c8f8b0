-- One row per order, renamed for analysts, from the raw table elt keeps merged by id.
select
    id as order_id,
    customer_id,
    product_id,
    quantity,
    unit_price,
    total as order_total,
    status,
    note,
    placed_at,
    promised_on,
    updated_at,
    _elt_extracted_at as loaded_at
from {{ source('demo', 'orders') }}
