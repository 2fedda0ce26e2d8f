{#- Generic data test: no two rows share the same values in `columns` (a composite key).
    Written here rather than taken from dbt_utils: the project installs no packages. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
