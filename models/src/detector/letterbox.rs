//! Fitting a picture into the detector's input: scaled to the canvas (a square, or the
//! frame's own shape padded to a multiple of 32), centred, padded with grey (114) as the
//! YOLO exporters train with; and boxes mapped back to the picture.

use image::RgbImage;
use ndarray::{Array4, Axis};

use crate::geometry::BBox;
use crate::manifest::Pixels;

/// The grey the YOLO exporters pad with.
const PAD: [u8; 3] = [114, 114, 114];

/// How a source image was fitted into the square model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Letterbox {
    /// Map a box from model-input pixels back to source-image pixels.
    pub fn unmap(&self, b: BBox) -> BBox {
        BBox::new(
            (b.x1 - self.pad_x) / self.scale,
            (b.y1 - self.pad_y) / self.scale,
            (b.x2 - self.pad_x) / self.scale,
            (b.y2 - self.pad_y) / self.scale,
        )
    }
}

/// Resize `image` into a `size` x `size` NCHW tensor in [0, 1], padded with grey (114) as
/// the YOLO exporters train with.
pub fn letterbox(image: &RgbImage, size: u32) -> (Array4<f32>, Letterbox) {
    letterbox_into(image, Canvas::Square(size), &Pixels::default())
}

/// The input a detector takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canvas {
    /// A fixed `size` x `size` input.
    Square(u32),
    /// Any input whose sides are multiples of `multiple`: the image fitted to `fit` on its
    /// longer side, then padded only up to the next multiple (640x360 -> 640x384).
    Fitted { fit: u32, multiple: u32 },
}

impl Canvas {
    fn fit(self) -> u32 {
        match self {
            Canvas::Square(size) => size,
            Canvas::Fitted { fit, .. } => fit,
        }
    }

    /// The scale an image of `width` x `height` is resized by to fit.
    pub fn scale(self, width: u32, height: u32) -> f32 {
        let fit = self.fit() as f32;
        (fit / width.max(1) as f32).min(fit / height.max(1) as f32)
    }

    /// An image of `width` x `height` resized by `scale`: its size, and the input's.
    fn layout(self, width: u32, height: u32, scale: f32) -> (u32, u32, u32, u32) {
        let fit = self.fit();
        let nw = ((width as f32 * scale).round() as u32).clamp(1, fit);
        let nh = ((height as f32 * scale).round() as u32).clamp(1, fit);
        let (cw, ch) = match self {
            Canvas::Square(size) => (size, size),
            Canvas::Fitted { multiple, .. } => (
                nw.div_ceil(multiple) * multiple,
                nh.div_ceil(multiple) * multiple,
            ),
        };
        (nw, nh, cw, ch)
    }

    /// The input size for an image of `width` x `height` resized by `scale`.
    pub fn input_size(self, width: u32, height: u32, scale: f32) -> (u32, u32) {
        let (_, _, cw, ch) = self.layout(width, height, scale);
        (cw, ch)
    }
}

/// Resize `image` to fit `canvas` and centre it there, padded with grey (114) as the YOLO
/// exporters train with; an NCHW tensor of `pixels`' values.
pub fn letterbox_into(
    image: &RgbImage,
    canvas: Canvas,
    pixels: &Pixels,
) -> (Array4<f32>, Letterbox) {
    let (w, h) = image.dimensions();
    let scale = canvas.scale(w, h);
    let (cw, ch) = canvas.input_size(w, h, scale);
    let mut tensor = Array4::<f32>::zeros((1, 3, ch as usize, cw as usize));
    let lb = fill(image, canvas, scale, pixels, &mut tensor, 0);
    (tensor, lb)
}

/// grey).
pub(super) fn fill(
    image: &RgbImage,
    canvas: Canvas,
    scale: f32,
    pixels: &Pixels,
    tensor: &mut Array4<f32>,
    n: usize,
) -> Letterbox {
    let (w, h) = image.dimensions();
    let (nw, nh, _, _) = canvas.layout(w, h, scale);
    let (ch, cw) = (tensor.shape()[2], tensor.shape()[3]);
    let resized;
    let source = if (nw, nh) == (w, h) {
        image
    } else {
        resized = image::imageops::resize(image, nw, nh, image::imageops::FilterType::Triangle);
        &resized
    };
    let pad_x = (cw as u32).saturating_sub(nw) / 2;
    let pad_y = (ch as u32).saturating_sub(nh) / 2;
    let mut slot = tensor.index_axis_mut(Axis(0), n);
    for (c, mut plane) in slot.outer_iter_mut().enumerate() {
        plane.fill(pixels.value(PAD, c));
        // One table per channel: the value of each byte, computed once.
        let table: Vec<f32> = (0..=255u8).map(|v| pixels.value([v, v, v], c)).collect();
        let source_channel = match pixels.channels {
            crate::manifest::ChannelOrder::Rgb => c,
            crate::manifest::ChannelOrder::Bgr => 2 - c,
        };
        for (y, row) in source.rows().enumerate() {
            let ty = y + pad_y as usize;
            if ty >= ch {
                break;
            }
            let mut out = plane.row_mut(ty);
            for (x, px) in row.enumerate() {
                let tx = x + pad_x as usize;
                if tx >= cw {
                    break;
                }
                out[tx] = table[px.0[source_channel] as usize];
            }
        }
    }
    Letterbox {
        scale,
        pad_x: pad_x as f32,
        pad_y: pad_y as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_pads_and_maps_back() {
        let image = RgbImage::from_pixel(640, 360, image::Rgb([255, 0, 0]));
        let (tensor, lb) = letterbox(&image, 640);
        assert_eq!(tensor.shape(), &[1, 3, 640, 640]);
        assert_eq!(lb.pad_y, 140.0);
        assert!((tensor[[0, 0, 0, 0]] - 114.0 / 255.0).abs() < 1e-6);
        assert_eq!(tensor[[0, 0, 140, 0]], 1.0);
        assert_eq!(tensor[[0, 1, 140, 0]], 0.0);
        let back = lb.unmap(BBox::new(10.0, 150.0, 20.0, 160.0));
        assert_eq!(back, BBox::new(10.0, 10.0, 20.0, 20.0));
    }

    #[test]
    fn a_fitted_canvas_pads_only_to_the_next_multiple_of_32() {
        let canvas = Canvas::Fitted {
            fit: 640,
            multiple: 32,
        };
        let image = RgbImage::from_pixel(640, 360, image::Rgb([0, 255, 0]));
        let (tensor, lb) = letterbox_into(&image, canvas, &Pixels::default());
        assert_eq!(tensor.shape(), &[1, 3, 384, 640]);
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (1.0, 0.0, 12.0));
        assert!((tensor[[0, 1, 11, 5]] - 114.0 / 255.0).abs() < 1e-6);
        assert_eq!(tensor[[0, 1, 12, 5]], 1.0);
        assert_eq!(tensor[[0, 1, 371, 639]], 1.0);
        assert!((tensor[[0, 1, 372, 639]] - 114.0 / 255.0).abs() < 1e-6);
        // A bigger frame is scaled down to fit first: 1920x1080 -> 640x360 -> 640x384.
        assert_eq!(canvas.scale(1920, 1080), 1.0 / 3.0);
        assert_eq!(canvas.input_size(1920, 1080, 1.0 / 3.0), (640, 384));
        // A region of a frame keeps the frame's scale: only its own pixels are run.
        assert_eq!(canvas.input_size(200, 90, 1.0), (224, 96));
        assert_eq!(Canvas::Square(640).input_size(200, 90, 1.0), (640, 640));
    }

    #[test]
    fn pixels_are_given_in_the_models_channel_order_scale_mean_and_deviation() {
        // NanoDet's: BGR, 0-255 less ImageNet's mean, over its deviation.
        let pixels = Pixels {
            channels: crate::manifest::ChannelOrder::Bgr,
            scale: 1.0,
            mean: [103.53, 116.28, 123.675],
            std: [57.375, 57.12, 58.395],
        };
        let image = RgbImage::from_pixel(4, 2, image::Rgb([200, 100, 50]));
        let (tensor, _) = letterbox_into(&image, Canvas::Square(4), &pixels);
        let near = |a: f32, b: f32| (a - b).abs() < 1e-4;
        assert!(near(tensor[[0, 0, 1, 0]], (50.0 - 103.53) / 57.375));
        assert!(near(tensor[[0, 1, 1, 0]], (100.0 - 116.28) / 57.12));
        assert!(near(tensor[[0, 2, 1, 0]], (200.0 - 123.675) / 58.395));
        // The padding is the same grey in the model's own terms.
        assert!(near(tensor[[0, 2, 0, 0]], (114.0 - 123.675) / 58.395));
    }
}
