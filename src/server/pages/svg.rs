//! Charts drawn on the server as SVG (no script, no CDN). Each is an image with a title and a
//! description for screen readers (`role="img"`, `aria-labelledby`), each bar carries its
//! figure as a tooltip, and the page shows the same figures in a table beside it.

use super::layout::esc;

/// A vertical bar per item (a day, say): `title` names the chart, `desc` says what a bar is.
/// `id` must be unique in the page. Sizes are in CSS pixels; the chart scales down to fit.
pub fn columns(id: &str, title: &str, desc: &str, items: &[(String, i64)]) -> String {
    const WIDTH: usize = 720;
    const HEIGHT: usize = 220;
    const LEFT: usize = 44;
    const BOTTOM: usize = 36;
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - BOTTOM - 16;
    let slot = plot_w as f64 / items.len().max(1) as f64;
    // At most about 12 labels under the axis.
    let every = items.len().div_ceil(12).max(1);
    let mut body = String::new();
    for (i, (label, n)) in items.iter().enumerate() {
        let h = (*n as f64 / max as f64 * plot_h as f64).round();
        let x = LEFT as f64 + slot * i as f64 + slot * 0.15;
        let y = 16.0 + plot_h as f64 - h;
        body.push_str(&format!(
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"><title>{l}: {n}</title></rect>"#,
            w = slot * 0.7,
            l = esc(label),
        ));
        if i % every == 0 {
            let short: String = label.chars().skip(5).collect();
            body.push_str(&format!(
                r#"<text x="{cx:.1}" y="{ty}" text-anchor="middle">{}</text>"#,
                esc(if short.is_empty() { label } else { &short }),
                cx = x + slot * 0.35,
                ty = HEIGHT - BOTTOM + 16,
            ));
        }
    }
    let axis_y = 16 + plot_h;
    format!(
        r##"<svg id="{id}" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">
<title id="{id}-t">{t}</title><desc id="{id}-d">{d}</desc>
<line x1="{LEFT}" y1="{axis_y}" x2="{right}" y2="{axis_y}" stroke="#4a4f4c"/>
<text x="{lx}" y="20" text-anchor="end">{max}</text><text x="{lx}" y="{axis_y}" text-anchor="end">0</text>
{body}</svg>"##,
        t = esc(title),
        d = esc(desc),
        right = WIDTH - 8,
        lx = LEFT - 6,
    )
}

/// A horizontal bar per item (a funnel's steps, ratings), labelled with its name and figure.
pub fn bars(id: &str, title: &str, desc: &str, items: &[(String, i64)]) -> String {
    const WIDTH: usize = 720;
    const ROW: usize = 26;
    const LABEL: usize = 230;
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let height = ROW * items.len().max(1) + 12;
    let room = (WIDTH - LABEL - 70) as f64;
    let mut body = String::new();
    for (i, (label, n)) in items.iter().enumerate() {
        let y = 6 + i * ROW;
        let w = (*n as f64 / max as f64 * room).round().max(if *n > 0 { 2.0 } else { 0.0 });
        let short: String = label.chars().take(32).collect();
        body.push_str(&format!(
            r#"<text x="{lx}" y="{ty}" text-anchor="end">{s}</text><rect class="bar" x="{LABEL}" y="{y}" width="{w:.0}" height="{h}"><title>{l}: {n}</title></rect><text x="{nx:.0}" y="{ty}">{n}</text>"#,
            lx = LABEL - 8,
            ty = y + 15,
            s = esc(&short),
            l = esc(label),
            h = ROW - 8,
            nx = LABEL as f64 + w + 6.0,
        ));
    }
    format!(
        r#"<svg id="{id}" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">
<title id="{id}-t">{t}</title><desc id="{id}-d">{d}</desc>
{body}</svg>"#,
        t = esc(title),
        d = esc(desc),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_largest_and_labels_escaped() {
        let svg = bars("f", "Funnel <booking>", "journeys per step", &[("Start".into(), 10), ("A & B".into(), 5)]);
        assert!(svg.contains(r#"role="img""#) && svg.contains("Funnel &lt;booking&gt;"), "{svg}");
        assert!(svg.contains(r#"width="420""#), "the largest bar spans the room: {svg}");
        assert!(svg.contains(r#"width="210""#), "half the largest, half the width: {svg}");
        assert!(svg.contains("A &amp; B: 5"));
        let empty = columns("d", "Days", "none", &[]);
        assert!(empty.starts_with("<svg") && !empty.contains("<rect"));
    }
}
