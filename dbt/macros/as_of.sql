{#- The moment the marts measure age against: var('as_of') when set (tests pin it), else now(). -#}
{% macro as_of() -%}
    {%- if var('as_of') is none -%} now() {%- else -%} '{{ var("as_of") }}'::timestamptz {%- endif -%}
{%- endmacro %}
