module libmosaic.org/mosaic

go 1.19
