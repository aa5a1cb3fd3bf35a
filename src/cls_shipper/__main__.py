from cls_shipper.cli import main

main()
