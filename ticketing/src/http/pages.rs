//! Server-rendered pages: the printable notice (Form 01 with the publication record)
//! for officers, and the same notice as a citizen sees it.

use maud::{DOCTYPE, Markup, html};
use vigil_core::local_time::TIME_ZONE;

use crate::notice::{Agency, Notice};

pub enum EvidenceLinks {
    Officer,
    /// The citizen's page; with a link to pay online where a provider is configured.
    Citizen {
        pay_online: bool,
    },
}

fn vnd(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    format!("{out} ₫")
}

fn violation_name(code: &str) -> &str {
    match code {
        "red_light" => {
            "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông (running a red light)"
        }
        "wrong_way" => "Đi ngược chiều (wrong way)",
        "wrong_lane" => "Đi không đúng làn đường (wrong lane)",
        "no_stopping" => "Dừng xe nơi cấm dừng (no stopping)",
        "no_parking" => "Đỗ xe nơi cấm đỗ (no parking)",
        "no_helmet" => "Không đội mũ bảo hiểm (no helmet)",
        "sidewalk_driving" => "Điều khiển xe trên hè phố (driving on the sidewalk)",
        "speed_5_10" => {
            "Chạy quá tốc độ quy định từ 05 km/h đến dưới 10 km/h (speeding, 5–10 km/h over)"
        }
        "speed_10_20" => {
            "Chạy quá tốc độ quy định từ 10 km/h đến 20 km/h (speeding, 10–20 km/h over)"
        }
        "speed_20_35" => {
            "Chạy quá tốc độ quy định trên 20 km/h đến 35 km/h (speeding, 20–35 km/h over)"
        }
        "speed_over_35" => "Chạy quá tốc độ quy định trên 35 km/h (speeding, over 35 km/h over)",
        other => other,
    }
}

pub fn notice_page(notice: &Notice, agency: &Agency, links: EvidenceLinks) -> Markup {
    let r = &notice.record;
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&TIME_ZONE)
            .format("%H:%M:%S %d/%m/%Y")
            .to_string()
    };
    let evidence_url = |event: &str, file: &str| match links {
        EvidenceLinks::Officer => format!("/api/evidence/{event}/{file}"),
        EvidenceLinks::Citizen { .. } => format!(
            "/citizen/notices/{}/evidence/{event}/{file}?plate={}",
            notice.code,
            urlencode(&r.plate)
        ),
    };
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                title { "Thông báo vi phạm " (notice.code) }
                style { (CSS) }
            }
            body {
                header {
                    p.unit { (agency.handling_unit) }
                    h1 { "THÔNG BÁO" br; "Về việc phát hiện vi phạm hành chính về trật tự, an toàn giao thông" }
                    p.form { "Mẫu số 01 — Thông tư 73/2024/TT-BCA · Notice of a traffic violation recorded by camera" }
                    p.code { "Mã thông báo (notice code): " strong { (notice.code) } }
                }
                section {
                    h2 { "Gửi (to)" }
                    table {
                        tr { th { "Chủ phương tiện (owner)" } td { (notice.owner.owner_name) } }
                        tr { th { "Địa chỉ (address)" } td { (notice.owner.address) } }
                    }
                }
                section {
                    h2 { "Phương tiện (vehicle)" }
                    table {
                        tr { th { "Biển số (plate)" } td.plate { (r.plate) } }
                        tr { th { "Màu biển (plate colour)" } td { (r.plate_colour) } }
                        tr { th { "Loại phương tiện (vehicle type)" } td { (r.vehicle_type) } }
                    }
                }
                section {
                    h2 { "Hành vi vi phạm (violations)" }
                    @for v in &r.violations {
                        div.violation {
                            table {
                                tr { th { "Thời gian (time)" } td { (v.time) } }
                                tr { th { "Địa điểm (location)" } td { (v.location) " — " (v.camera_id) } }
                                tr { th { "Hành vi (violation)" } td { (violation_name(&v.violation)) } }
                                @if let (Some(article), Some(decree)) = (&v.article, &v.decree) {
                                    tr { th { "Căn cứ (legal basis)" } td { "Điểm " (article) ", " (decree) } }
                                }
                                @if let (Some(min), Some(max)) = (v.fine_min_vnd, v.fine_max_vnd) {
                                    tr { th { "Mức phạt (fine)" } td { (vnd(min)) " – " (vnd(max)) } }
                                }
                            }
                            div.evidence {
                                @for (case_id, event) in notice.evidence.iter().filter(|(c, _)| *c == v.case_id) {
                                    figure {
                                        img src=(evidence_url(event, "2_on.jpg")) alt={ "Key frame, case " (case_id) };
                                        figcaption { "Hình ảnh vi phạm (key frame)" }
                                    }
                                    figure {
                                        img src=(evidence_url(event, "plate.jpg")) alt="Plate crop";
                                        figcaption { "Biển số (plate)" }
                                    }
                                    @if v.violation == "no_helmet" {
                                        figure {
                                            img src=(evidence_url(event, "head.jpg")) alt="Rider's head";
                                            figcaption { "Người điều khiển (rider)" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                section {
                    h2 { "Tổng (total)" }
                    table {
                        tr { th { "Tổng mức phạt (total fine)" } td { (vnd(r.fine_total_min_vnd)) " – " (vnd(r.fine_total_max_vnd)) } }
                        tr { th { "Trừ điểm giấy phép lái xe (licence points)" } td { (r.points) } }
                        tr { th { "Số tiền nộp trực tuyến (amount to pay online)" } td { (vnd(notice.amount_due_vnd)) } }
                    }
                    p.small { "Nhiều hành vi: phạt từng hành vi, chỉ áp dụng mức trừ điểm cao nhất (Nghị định 168/2024 Điều 50.1.b)." }
                }
                section {
                    h2 { "Đơn vị (units)" }
                    table {
                        tr { th { "Đơn vị phát hiện (detecting unit)" } td { (r.detecting_unit) } }
                        tr { th { "Đơn vị giải quyết (handling unit)" } td { (r.handling_unit) } }
                        tr { th { "Điện thoại liên hệ (contact phone)" } td { (r.contact_phone) } }
                        tr { th { "Ngày thông báo (issued)" } td { (local(notice.issued_at)) } }
                    }
                    @if let Some(url) = &agency.lookup_url {
                        p { "Tra cứu trực tuyến (look up online): " (url) " — mã " (notice.code) }
                    }
                }
                @if let Some(reference) = &notice.payment_reference {
                    section.paid {
                        h2 { "Đã nộp phạt (paid)" }
                        p { "Mã giao dịch (payment reference): " (reference) }
                    }
                } @else if let EvidenceLinks::Citizen { pay_online: true } = links {
                    section {
                        h2 { "Nộp phạt (payment)" }
                        p {
                            a href={ "/citizen/notices/" (notice.code) "/pay?plate=" (urlencode(&r.plate)) } {
                                "Nộp phạt trực tuyến (pay online)"
                            }
                        }
                    }
                }
                @if matches!(links, EvidenceLinks::Officer) && !notice.payment_claims.is_empty() {
                    section {
                        h2 { "Người dân báo đã nộp (payment claims to check)" }
                        ul {
                            @for claim in &notice.payment_claims {
                                li { (claim.reference) " — " (local(claim.claimed_at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const CSS: &str = "
body { font-family: 'DejaVu Serif', serif; max-width: 52rem; margin: 2rem auto; color: #111; }
header { text-align: center; border-bottom: 2px solid #111; margin-bottom: 1rem; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; } th { text-align: left; width: 40%; font-weight: normal; color: #444; }
th, td { padding: .25rem .5rem; vertical-align: top; } td.plate { font-size: 1.4rem; font-weight: bold; letter-spacing: .05em; }
.evidence { display: flex; gap: 1rem; align-items: flex-start; } figure { margin: .5rem 0; }
.evidence img { max-width: 24rem; border: 1px solid #999; } .small { font-size: .85rem; color: #444; }
.paid { border: 2px solid #060; padding: .5rem; }
@media print { body { margin: 0; } }
";
